/*
 * @keyfold/nsm-ioctl: the one system call Node cannot make, for the Nitro Secure Module.
 *
 * request(devicePath, cborRequest) opens the device, sends one NSM_IOCTL_RAW message (struct nsm_raw from Linux's
 * include/uapi/linux/nsm.h; the layout of the older out-of-tree driver's two struct iovec is the same on 64-bit
 * Linux), closes the device and resolves with the CBOR response bytes. The work runs on the libuv thread pool, so
 * the event loop never blocks on the device. Failures reject with an Error carrying `errno` and `syscall`; the
 * JavaScript side names and classifies them. No request or response content is ever copied into an error.
 */
#define _GNU_SOURCE
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define NSM_MAGIC 0x0A
#define NSM_REQUEST_MAX_SIZE 0x1000
#define NSM_RESPONSE_MAX_SIZE 0x3000
#define PATH_MAX_BYTES 4096

struct nsm_iovec {
  uint64_t addr;
  uint64_t len;
};

struct nsm_raw {
  struct nsm_iovec request;
  struct nsm_iovec response;
};

#define NSM_IOCTL_RAW _IOWR(NSM_MAGIC, 0x0, struct nsm_raw)

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char *path;
  uint8_t request[NSM_REQUEST_MAX_SIZE];
  size_t request_len;
  uint8_t response[NSM_RESPONSE_MAX_SIZE];
  size_t response_len;
  int err;
  const char *syscall;
} job_t;

static void free_job(job_t *job) {
  free(job->path);
  free(job);
}

/* Thread pool: no N-API calls here. */
static void execute(napi_env env, void *data) {
  (void)env;
  job_t *job = (job_t *)data;
  int fd = open(job->path, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    job->err = errno;
    job->syscall = "open";
    return;
  }
  struct nsm_raw raw;
  memset(&raw, 0, sizeof raw);
  raw.request.addr = (uint64_t)(uintptr_t)job->request;
  raw.request.len = job->request_len;
  raw.response.addr = (uint64_t)(uintptr_t)job->response;
  raw.response.len = sizeof job->response;
  int rc;
  do {
    rc = ioctl(fd, NSM_IOCTL_RAW, &raw);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    job->err = errno;
    job->syscall = "ioctl";
  } else if (raw.response.len > sizeof job->response) {
    job->err = EMSGSIZE;
    job->syscall = "ioctl";
  } else {
    job->response_len = (size_t)raw.response.len;
  }
  close(fd);
}

static void complete(napi_env env, napi_status status, void *data) {
  job_t *job = (job_t *)data;
  napi_value result;
  if (status != napi_ok) {
    job->err = ECANCELED;
    job->syscall = "request";
  }
  if (job->err != 0) {
    napi_value message, code_value, syscall_value;
    napi_create_string_utf8(env, "the NSM request failed", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &result);
    napi_create_int32(env, job->err, &code_value);
    napi_create_string_utf8(env, job->syscall, NAPI_AUTO_LENGTH, &syscall_value);
    napi_set_named_property(env, result, "errno", code_value);
    napi_set_named_property(env, result, "syscall", syscall_value);
    napi_reject_deferred(env, job->deferred, result);
  } else {
    void *copy;
    if (napi_create_buffer_copy(env, job->response_len, job->response, &copy, &result) == napi_ok) {
      napi_resolve_deferred(env, job->deferred, result);
    } else {
      napi_value message;
      napi_create_string_utf8(env, "could not allocate the NSM response", NAPI_AUTO_LENGTH, &message);
      napi_create_error(env, NULL, message, &result);
      napi_reject_deferred(env, job->deferred, result);
    }
  }
  napi_delete_async_work(env, job->work);
  free_job(job);
}

static napi_value throw_type_error(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

/* request(devicePath: string, request: Uint8Array): Promise<Buffer> */
static napi_value request(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2) {
    return throw_type_error(env, "request(devicePath, request) takes two arguments");
  }
  size_t path_len = 0;
  if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &path_len) != napi_ok) {
    return throw_type_error(env, "devicePath must be a string");
  }
  if (path_len == 0 || path_len >= PATH_MAX_BYTES) return throw_type_error(env, "devicePath must be 1..4095 bytes");

  bool is_typedarray = false;
  napi_is_typedarray(env, argv[1], &is_typedarray);
  if (!is_typedarray) return throw_type_error(env, "request must be a Uint8Array");
  napi_typedarray_type type;
  size_t length = 0;
  void *bytes = NULL;
  napi_value arraybuffer;
  size_t offset = 0;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &bytes, &arraybuffer, &offset) != napi_ok || type != napi_uint8_array) {
    return throw_type_error(env, "request must be a Uint8Array");
  }
  if (length == 0 || length > NSM_REQUEST_MAX_SIZE) {
    napi_throw_range_error(env, NULL, "an NSM request is 1..4096 bytes");
    return NULL;
  }

  job_t *job = (job_t *)calloc(1, sizeof(job_t));
  if (job == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  job->path = (char *)malloc(path_len + 1);
  if (job->path == NULL) {
    free(job);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  size_t copied = 0;
  napi_get_value_string_utf8(env, argv[0], job->path, path_len + 1, &copied);
  if (copied != path_len || strlen(job->path) != path_len) {
    free_job(job);
    return throw_type_error(env, "devicePath must not contain NUL characters");
  }
  memcpy(job->request, bytes, length);
  job->request_len = length;

  napi_value promise, resource_name;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "keyfold:nsm-request", NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_create_async_work(env, NULL, resource_name, execute, complete, job, &job->work) != napi_ok) {
    free_job(job);
    napi_throw_error(env, NULL, "could not schedule the NSM request");
    return NULL;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_async_work(env, job->work);
    free_job(job);
    napi_throw_error(env, NULL, "could not schedule the NSM request");
    return NULL;
  }
  return promise;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn, code, req_max, resp_max;
  napi_create_function(env, "request", NAPI_AUTO_LENGTH, request, NULL, &fn);
  napi_set_named_property(env, exports, "request", fn);
  napi_create_double(env, (double)NSM_IOCTL_RAW, &code);
  napi_set_named_property(env, exports, "ioctlRequestCode", code);
  napi_create_uint32(env, NSM_REQUEST_MAX_SIZE, &req_max);
  napi_set_named_property(env, exports, "requestMaxSize", req_max);
  napi_create_uint32(env, NSM_RESPONSE_MAX_SIZE, &resp_max);
  napi_set_named_property(env, exports, "responseMaxSize", resp_max);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
