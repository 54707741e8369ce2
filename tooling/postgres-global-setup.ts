/**
 * vitest `globalSetup`: one throwaway PostgreSQL server for a package's test run, provided to the tests as
 * `inject('pgUrl')`. Tests isolate themselves with a schema of their own. Stopped at the end of the run.
 */
import type { TestProject } from 'vitest/node';
import { startPostgres, type PostgresServer } from './postgres-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
  }
}

let server: PostgresServer | undefined;

export async function setup(project: TestProject): Promise<void> {
  server = await startPostgres();
  project.provide('pgUrl', server.url);
}

export async function teardown(): Promise<void> {
  await server?.stop();
  server = undefined;
}
