{
  "targets": [
    {
      "target_name": "nsm_ioctl",
      "sources": ["native/nsm_ioctl.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2"]
    }
  ]
}
