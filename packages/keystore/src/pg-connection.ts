/**
 * One node-postgres rule, for every PostgreSQL client Keyfold opens (the key store's pool, the CLI's table rewrap):
 * the socket of a connection attempt that failed on the client side must be closed by hand.
 * @module
 */

/**
 * Closes the socket of a node-postgres client whose `connect()` failed. node-postgres keeps that socket open when
 * the attempt failed on the client side (the server asked for a password and there is none), and nothing else
 * holds the client: the process would stay alive until the server's `authentication_timeout` (60 s by default)
 * closes it. Call it in the `connect()` failure path; it does nothing for a client without a socket.
 * @example
 * ```ts
 * try {
 *   await client.connect();
 * } catch (err) {
 *   closeFailedConnection(client);
 *   throw err;
 * }
 * ```
 */
export function closeFailedConnection(client: unknown): void {
  const connection = (client as { connection?: { stream?: { destroy?: () => void } } } | null)?.connection;
  connection?.stream?.destroy?.();
}
