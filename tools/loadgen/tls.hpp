// fanout-loadgen: the client TLS context (--tls). One per process, shared by its connections.
#pragma once

#include <cstdio>
#include <cstdlib>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common.hpp"

namespace fanout::loadgen {

// TLS 1.2+, offering TLS 1.3 suites in a browser's order (--tls-ciphersuites). Without a CA file
// the server is not verified: benchmarks run against self-signed certificates on loopback.
inline SSL_CTX* make_tls_context(const Options& o) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    std::fprintf(stderr, "fanout-loadgen: SSL_CTX_new failed\n");
    std::exit(2);
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_set_ciphersuites(ctx, o.tls_ciphersuites.c_str()) != 1) {
    std::fprintf(stderr, "fanout-loadgen: bad --tls-ciphersuites %s\n", o.tls_ciphersuites.c_str());
    std::exit(2);
  }
  if (o.tls_ca_file.empty()) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  } else {
    if (SSL_CTX_load_verify_locations(ctx, o.tls_ca_file.c_str(), nullptr) != 1) {
      std::fprintf(stderr, "fanout-loadgen: cannot load --tls-ca-file %s\n", o.tls_ca_file.c_str());
      std::exit(2);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  return ctx;
}

}  // namespace fanout::loadgen
