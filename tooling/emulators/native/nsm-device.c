/*
 * A stand-in for the Nitro Secure Module kernel driver, for tests on machines that are not Nitro Enclaves.
 *
 * Loaded with LD_PRELOAD, it interposes ioctl(2). A call with request NSM_IOCTL_RAW on a descriptor whose path is
 * $KEYFOLD_NSM_EMULATOR_DEVICE behaves as the driver does: it reads the request bytes from the caller's nsm_raw,
 * hands them to the NSM emulator listening on the Unix socket $KEYFOLD_NSM_EMULATOR_SOCKET (frame: 4-byte big-endian
 * length, then the bytes; the answer comes back the same way), copies the answer into the caller's response buffer
 * and sets response.len. The request is refused with EMSGSIZE above 4096 bytes and when the answer does not fit,
 * as the driver refuses them. Every other ioctl goes to the C library untouched.
 *
 * So the binding under test makes its real open(2) and ioctl(2) with its real struct layout; only the kernel side
 * is replaced, the way the wire-protocol emulators replace a cloud service.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define NSM_REQUEST_MAX_SIZE 0x1000

struct nsm_iovec {
  uint64_t addr;
  uint64_t len;
};

struct nsm_raw {
  struct nsm_iovec request;
  struct nsm_iovec response;
};

#define NSM_IOCTL_RAW _IOWR(0x0A, 0x0, struct nsm_raw)

typedef int (*ioctl_fn)(int, unsigned long, ...);

static int is_emulated_device(int fd) {
  const char *device = getenv("KEYFOLD_NSM_EMULATOR_DEVICE");
  if (device == NULL || device[0] == '\0') return 0;
  char link[64];
  char target[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n < 0) return 0;
  target[n] = '\0';
  return strcmp(target, device) == 0;
}

static int write_all(int s, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(s, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int read_all(int s, uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t r = read(s, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static int emulate(struct nsm_raw *raw) {
  if (raw->request.len == 0 || raw->request.len > NSM_REQUEST_MAX_SIZE) {
    errno = EMSGSIZE;
    return -1;
  }
  const char *path = getenv("KEYFOLD_NSM_EMULATOR_SOCKET");
  if (path == NULL || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
    errno = EIO;
    return -1;
  }
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    errno = EIO;
    return -1;
  }
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  strcpy(addr.sun_path, path);
  uint8_t header[4];
  uint32_t len = (uint32_t)raw->request.len;
  header[0] = (uint8_t)(len >> 24);
  header[1] = (uint8_t)(len >> 16);
  header[2] = (uint8_t)(len >> 8);
  header[3] = (uint8_t)len;
  int rc = -1;
  int err = EIO;
  if (connect(s, (struct sockaddr *)&addr, sizeof addr) == 0 && write_all(s, header, 4) == 0 &&
      write_all(s, (const uint8_t *)(uintptr_t)raw->request.addr, len) == 0 && read_all(s, header, 4) == 0) {
    uint32_t answer = ((uint32_t)header[0] << 24) | ((uint32_t)header[1] << 16) | ((uint32_t)header[2] << 8) | header[3];
    if (answer > raw->response.len) {
      err = EMSGSIZE;
    } else if (read_all(s, (uint8_t *)(uintptr_t)raw->response.addr, answer) == 0) {
      raw->response.len = answer;
      rc = 0;
    }
  }
  close(s);
  if (rc != 0) errno = err;
  return rc;
}

int ioctl(int fd, unsigned long request, ...) {
  va_list ap;
  va_start(ap, request);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  if (request == (unsigned long)NSM_IOCTL_RAW && is_emulated_device(fd)) return emulate((struct nsm_raw *)arg);
  static ioctl_fn real_ioctl = NULL;
  if (real_ioctl == NULL) real_ioctl = (ioctl_fn)dlsym(RTLD_NEXT, "ioctl");
  if (real_ioctl == NULL) {
    errno = ENOSYS;
    return -1;
  }
  return real_ioctl(fd, request, arg);
}
