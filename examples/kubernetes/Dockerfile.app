# An application image with baowrap baked in as its ENTRYPOINT: no init
# container and no shared volume. The binary is static, so any base works
# (distroless, alpine, scratch). Build with BuildKit:
#   docker build -f Dockerfile.app -t registry.example.com/my-app-baowrap:1.0.0 .
FROM registry.example.com/baowrap/init:0.1.0 AS baowrap

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=baowrap /usr/local/bin/baowrap /usr/local/bin/baowrap
COPY --chmod=0555 server /app/server
USER 65532:65532
# baowrap wraps whatever CMD (or a pod's `args`) says; `--` keeps the
# command's own options away from baowrap's.
ENTRYPOINT ["/usr/local/bin/baowrap", "--"]
CMD ["/app/server", "--listen", ":8080"]
