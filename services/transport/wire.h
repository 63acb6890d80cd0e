// Internal: what every transport shares — TCP frames, admission of incoming messages, the wire
// form of replies, HTTP status codes for error codes, tokens.
//
// TCP frame: a 4-byte big-endian length, then that many bytes of JSON (one message or reply).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "access.h"
#include "listener_limits.h"
#include "shardkit/message/codec.h"
#include "shardkit/message/handler.h"
#include "shardkit/services/client.h"
#include "shardkit/services/config.h"
#include "shardkit/services/metrics.h"

namespace shardkit::services {

// Passes an admitted message to the node (its Bus) and receives the reply exactly once.
using DispatchFn = std::function<void(Message, ReplyFn)>;

// A GET of /console or below on an http:// listener with `console` (services/console).
struct PageRequest {
  std::string path;   // "/console/state"
  std::string query;  // after '?', still percent-encoded
};
struct PageResponse {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // more response headers
};
// Answers a page request exactly once, on any thread; `config` is the listener's.
using PageFn = std::function<void(PageRequest, const ListenerConfig& config,
                                  std::function<void(PageResponse)> respond)>;

// What a listener needs from its node.
struct ListenerHooks {
  DispatchFn dispatch;
  // Fire-and-forget messages from other nodes: to this node's own services only, never routed
  // on (else two nodes observing one event would pass it back and forth).
  DispatchFn dispatch_local;
  std::function<std::string()> metrics_text;  // GET /metrics
  std::function<std::string()> health_json;   // GET /health
  PageFn console;                             // GET /console…
  // Whether a message is an operation (access.h); null: only sys:* messages are.
  std::function<bool(const Message&)> is_operation;
  std::function<void(const AuditRecord&)> audit;  // null: not audited
  std::shared_ptr<ListenerCounters> counters;     // refused and dropped connections
};

// A bound listener. Created by the Start*Listener functions below.
class Listener {
 public:
  virtual ~Listener() = default;
  // The URL with the bound port.
  virtual std::string url() const = 0;
  // Stops accepting connections and reading new requests; requests already read are answered.
  virtual void StopAccepting() = 0;
  // Closes every connection once its replies are written (or at once when `now`).
  virtual void Close() = 0;
  // Open connections.
  virtual size_t connections() const = 0;
  // The patterns this node's services serve changed (reload); a listener that subscribes per
  // pattern (nats://) follows them.
  virtual void ServedPatternsChanged(const std::vector<std::string>& patterns) {}
  // Reads a tls:// or https:// listener's certificate and key again (reload): connections
  // accepted afterwards use them. The old ones stay when the files are unreadable.
  virtual Status ReloadCertificates() { return Status::Ok(); }
};

Result<std::unique_ptr<Listener>> StartTcpListener(IoRuntime& runtime, const ListenerConfig& config,
                                                   ListenerHooks hooks);
Result<std::unique_ptr<Listener>> StartHttpListener(IoRuntime& runtime,
                                                    const ListenerConfig& config,
                                                    ListenerHooks hooks);
Result<std::unique_ptr<Listener>> StartInprocListener(IoRuntime& runtime,
                                                      const ListenerConfig& config,
                                                      ListenerHooks hooks);

// `patterns`: what the node's services serve (canonical pattern texts), one subject each.
Result<std::unique_ptr<Listener>> StartNatsListener(const ListenerConfig& config,
                                                    ListenerHooks hooks,
                                                    const std::vector<std::string>& patterns);

// tls:// and https://: `invalid` when the options' TLS files cannot be read.
Result<std::shared_ptr<Handler>> MakeTcpClient(IoRuntime& runtime, const Endpoint& endpoint,
                                               ClientOptions options);
Result<std::shared_ptr<Handler>> MakeHttpClient(IoRuntime& runtime, const Endpoint& endpoint,
                                                ClientOptions options);
std::shared_ptr<Handler> MakeInprocClient(IoRuntime& runtime, const Endpoint& endpoint,
                                          ClientOptions options);
// A client of the NATS server at `endpoint`: requests go to the subject of `pattern`, or to
// shardkit.node (any node) when it is empty. `resend_after_ms` > 0: a request without a reply in
// that time is sent once more (nats_link.h). `unavailable` if the server cannot be reached.
Result<std::shared_ptr<Handler>> MakeNatsClient(const Endpoint& endpoint, ClientOptions options,
                                                std::string pattern = {},
                                                int64_t resend_after_ms = 0);

// --- Frames
// ---------------------------------------------------------------------------------------
inline constexpr size_t kFrameHeaderBytes = 4;
// Appends the frame of `message` to `out`.
void AppendFrame(const Message& message, std::string& out);
inline uint32_t ReadFrameLength(const char* p) {
  auto b = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

// The first frame in `bytes` (received, not yet consumed), as every TCP reader takes it apart.
struct FrameScan {
  enum class Kind {
    kFrame,     // `body` is a whole frame's JSON; `size` (header + body) bytes are consumed
    kPartial,   // more bytes needed: `size` is the whole frame's, 0 while the header is partial
    kTooLarge,  // the header announces `size` bytes, over `max_bytes`: framing cannot go on
  };
  Kind kind;
  size_t size = 0;
  std::string_view body;
};
FrameScan ScanFrame(std::string_view bytes, size_t max_bytes);

// --- Requests and replies
// --------------------------------------------------------------------------- Admission common to
// every listener: refuses what `caller` may not send there (access.h); on an external listener
// strips `shard`, `cache` and meta$ (but the trace); caps the deadline at now + request_timeout_ms.
Status AdmitIncoming(Message& message, const ListenerConfig& config, const ListenerHooks& hooks,
                     const Caller& caller, int64_t now_ms);
// The wire form of a reply: the message or its error, with meta$.id = `id`.
Message ReplyWire(Result<Message> result, const std::string& id);
// What replaces a reply of `bytes` encoded bytes, over the listener's max_reply_bytes: `invalid`
// naming the limit and how to page, details {"max_reply_bytes":N,"reply_bytes":M}.
Status ReplyTooLarge(size_t bytes, size_t max_bytes);
// Appends the JSON (AppendReplyJson) or the frame (AppendReplyFrame) of ReplyWire(result, id) to
// `out`; a reply whose JSON exceeds `max_bytes` is replaced there by ReplyTooLarge's.
void AppendReplyJson(Result<Message> result, const std::string& id, size_t max_bytes,
                     std::string& out);
void AppendReplyFrame(Result<Message> result, const std::string& id, size_t max_bytes,
                      std::string& out);
// The HTTP status for an error reply.
int HttpStatusFor(const Status& status);
// The refusal for a missing or wrong token (`invalid`, details {"http_status":401}).
Status Unauthorized();
// Compares in time independent of where the texts differ.
bool TokenMatches(std::string_view presented, std::string_view expected);
// The time a client call may take: min(timeout, deadline - now); <= 0 means already late. Also
// sets the message's deadline to now + that time.
int64_t CallBudgetMs(Message& message, int64_t timeout_ms, int64_t now_ms);
int64_t NowMs();

// Calls `reply` at most once, whichever of the reply and the timeout comes first.
class ReplyOnce {
 public:
  explicit ReplyOnce(ReplyFn reply) : reply_(std::move(reply)) {}
  bool Reply(Result<Message> result) {
    if (done_.exchange(true)) return false;
    ReplyFn fn = std::move(reply_);
    fn(std::move(result));
    return true;
  }

 private:
  std::atomic<bool> done_{false};
  ReplyFn reply_;
};

}  // namespace shardkit::services
