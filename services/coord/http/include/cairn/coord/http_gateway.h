// HttpGateway: etcd's v3 JSON gateway (grpc-gateway's HTTP/1.1 + JSON mapping of the KV, Watch,
// Lease, Cluster and Maintenance services) in front of a CoordApi, on Boost.Beast.
//
//   POST /v3/kv/range|put|deleterange|txn|compaction          (also /v3beta/..., /v3alpha/...)
//   POST /v3/watch                    chunked stream, one {"result":{...}} JSON line per response
//   POST /v3/lease/grant|revoke|keepalive|timetolive|leases   (and /v3/kv/lease/revoke|timetolive)
//   POST /v3/cluster/member/list|add|remove|promote|update
//   POST /v3/maintenance/status
//   POST /v3/maintenance/snapshot      chunked stream of {"result":{"blob":...}} lines, when the CoordApi
//                                      is also a SnapshotSource (CoordNode); Unimplemented otherwise
//   GET  /health  /metrics  /version
//   POST /cairn/v1/...                Cairn's own endpoints (join tokens, join), served by
//                                      GatewayOptions::extension when set
//
// Authentication: with GatewayOptions::api_token set, every request must carry
// "Authorization: Bearer TOKEN" except GET /health, GET /version and POST /cairn/v1/join/...
// (the join token authenticates those); others get 401 {"error":...,"code":16}.
//
// Bodies are protobuf's JSON mapping of etcd's messages (proto field names, base64 bytes, int64 as
// strings); errors are {"error":MSG,"message":MSG,"code":GRPC_CODE} with grpc-gateway's HTTP
// status. docs/coord-api.md lists every endpoint, the error table and the known differences from
// etcd 3.4.
//
// Connections: HTTP/1.1 keep-alive; pipelined requests are answered one at a time in order. Each
// connection runs on its own strand of the caller's io_context, so any number of threads may run
// that io_context. Nothing blocks: handlers decode, call the CoordApi, and encode in its callback.
//
// Lifetime: the CoordApi must outlive every connection (they hold callbacks into it); the gateway
// object itself may be destroyed at any time (its destructor calls Stop(); connections keep their
// own state), but before the io_context, since Stop() posts to it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "cairn/common/status.h"
#include "cairn/common/strings.h"
#include "cairn/coord/api.h"

namespace cairn::coord {

// One request to a /cairn/v1/ endpoint and its answer (a JSON body with an HTTP status).
struct ExtensionRequest {
  std::string path;  // e.g. "/cairn/v1/token/create" (query string removed)
  std::string body;
  std::string peer;  // "host:port" of the caller
};
struct ExtensionReply {
  int http_status = 200;
  std::string body;  // JSON
};
// Called on a gateway thread; must not block: answer through `reply` (once, from any thread).
using ExtensionHandler = std::function<void(ExtensionRequest request, std::function<void(ExtensionReply)> reply)>;

struct GatewayOptions {
  // When not empty, requests must carry "Authorization: Bearer api_token" (see the header comment).
  std::string api_token;
  // Serves POST /cairn/v1/...; empty: those paths answer 404.
  ExtensionHandler extension;
  // Largest decoded request (etcd's --max-request-bytes, 1.5 MiB): larger ones get etcd's
  // "etcdserver: request is too large" (400).
  size_t max_request_bytes = 1536 * 1024;
  // Largest HTTP body: base64 makes a max_request_bytes request 4/3 larger, plus JSON margin.
  // Larger bodies get 413 and the connection is closed.
  size_t max_body_bytes = 2560 * 1024;
  size_t max_header_bytes = 16 * 1024;
  // Time a client has to deliver a whole request (headers and body), counted from when the
  // connection starts waiting for it; also the keep-alive idle limit. Slow clients are cut off.
  std::chrono::milliseconds read_timeout{30000};
  // Time a client has to accept a response.
  std::chrono::milliseconds write_timeout{30000};
  // Passed to the CoordApi as CallOptions::deadline.
  std::chrono::milliseconds call_deadline{5000};
  // A watch stream whose client reads slower than events arrive is closed once this many bytes
  // wait unsent.
  size_t max_watch_backlog_bytes = 16 * 1024 * 1024;
  // What /version and /v3/maintenance/status report (etcd's etcdserver / etcdcluster fields).
  std::string etcd_server_version = "3.4.0";
  std::string etcd_cluster_version = "3.4.0";
};

struct GatewayState;  // shared by the gateway and its connections (src/gateway_state.h)

class HttpGateway {
 public:
  HttpGateway(boost::asio::io_context& io, CoordApi& api, HostPort listen, GatewayOptions options = {});
  ~HttpGateway();  // calls Stop()
  HttpGateway(const HttpGateway&) = delete;
  HttpGateway& operator=(const HttpGateway&) = delete;

  // Binds and starts accepting. Port 0 picks a free port (see port()). Errors: InvalidArgument
  // for a host that does not resolve, Unavailable/IoError when the bind fails. Call once.
  Status Start();

  // Graceful stop, from any thread, returns at once: closes the listener and idle connections;
  // requests already received are answered (then their connections close); watch streams get
  // their final chunk and close. Idempotent.
  void Stop();

  // The bound port (valid after Start succeeded).
  uint16_t port() const;
  // Connections open now (tests wait for 0 after Stop).
  size_t connection_count() const;
  // The gateway's own metrics in Prometheus text format (also part of GET /metrics).
  std::string Metrics() const;

 private:
  class Listener;
  boost::asio::io_context& io_;
  HostPort listen_;
  std::shared_ptr<GatewayState> state_;
  std::shared_ptr<Listener> listener_;
};

}  // namespace cairn::coord
