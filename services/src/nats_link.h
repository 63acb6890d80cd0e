// Internal: one connection to a NATS server (the cnats C client), shared in a process by every
// NATS listener, client and cluster agent that names the same server. nats.h stays inside
// services/src (nats_link.cc, nats.cc, cluster.cc).
//
// The connection reconnects forever with a growing delay (100 ms doubling to 2 s, with jitter);
// while it is down, new requests answer `unavailable` at once and requests in flight when it
// dropped answer `unavailable` (never hang). Subscriptions come back by themselves on reconnect.
//
// Requests: Request() publishes with a reply subject in this link's own inbox
// (`_INBOX.<nuid>.<n>`), so many requests share one subscription and replies are matched by n.
// A sweeper thread answers `timeout` at each request's deadline and, when `resend_after_ms` is
// set, sends a request that has had no reply in that time once more, with the same meta$.id (the
// instance that took it may have died; NATS gives the copy to another member of the queue group).
//
// Thread-safety: every method is safe from any thread. Replies come on cnats or sweeper threads.
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "shardkit/message/handler.h"
#include "shardkit/message/status.h"
#include "shardkit/services/endpoint.h"

namespace shardkit::services {

// Subjects (docs/cluster.md): a served pattern P is `shardkit.p.<P escaped>`, served by a queue
// group; `shardkit.node` reaches any node (its whole routing table); fire-and-forget messages with
// an `info` property go to `shardkit.info.<value escaped>` and every subscriber gets them.
inline constexpr std::string_view kNodeSubject = "shardkit.node";
inline constexpr std::string_view kInfoSubjects = "shardkit.info.>";
inline constexpr std::string_view kQueueGroup = "shardkit";
// Escapes the characters NATS gives a meaning in subjects ('.', '*', '>', whitespace, '~' and
// bytes outside printable ASCII) as ~XX; the rest is kept so subjects stay readable.
std::string EscapeSubjectToken(std::string_view text);
std::string PatternSubject(std::string_view canonical_pattern);
std::string InfoSubject(std::string_view info_value);

// A natsStatus as a Status (`unavailable` for connection problems, `timeout`, else `internal`).
Status NatsError(natsStatus status, std::string_view what);

class NatsLink {
 public:
  // The live link to `endpoint` in this process, or a new one. `unavailable` naming the URL when
  // the server cannot be reached now.
  static Result<std::shared_ptr<NatsLink>> Shared(const Endpoint& endpoint);
  ~NatsLink();
  NatsLink(const NatsLink&) = delete;
  NatsLink& operator=(const NatsLink&) = delete;

  natsConnection* connection() const { return connection_; }
  bool connected() const { return connected_.load(std::memory_order_acquire); }
  const std::string& url() const { return url_; }
  // The server's largest message (bytes).
  int64_t max_payload() const;

  struct RequestOptions {
    int64_t budget_ms = 5'000;    // answered `timeout` after this
    int64_t resend_after_ms = 0;  // 0: never sent twice
    bool expect_reply = true;     // false: fire-and-forget (answered {"published":n} at once)
  };
  // Sends `payload` (a message's JSON) to `subject`; `reply` gets the parsed reply exactly once,
  // with meta$.id = `id`.
  void Request(const std::string& subject, std::string payload, std::string id,
               RequestOptions options, ReplyFn reply);

  // Calls `fn(connected)` on a cnats thread each time the connection drops or comes back.
  uint64_t OnStateChange(std::function<void(bool)> fn);
  void RemoveStateListener(uint64_t id);

  // Requests resent (cumulative) and requests in flight now.
  uint64_t resent() const { return resent_.load(std::memory_order_relaxed); }

 private:
  NatsLink(std::string url);
  Status Open(const Endpoint& endpoint);
  struct Pending {
    std::string subject;
    std::string payload;
    std::string id;
    int64_t deadline_ms;
    int64_t resend_at_ms;  // 0: never
    ReplyFn reply;
  };
  static void OnInboxMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);
  static void OnDisconnected(natsConnection*, void* closure);
  static void OnReconnected(natsConnection*, void* closure);
  static void OnClosed(natsConnection*, void* closure);
  void StateChanged(bool connected);
  void FailAll(const Status& status);
  void Sweep();

  const std::string url_;
  natsConnection* connection_ = nullptr;
  natsSubscription* inbox_ = nullptr;
  std::string inbox_prefix_;  // "_INBOX.<nuid>."
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> next_{1};
  std::atomic<uint64_t> resent_{0};

  std::mutex mutex_;
  std::unordered_map<uint64_t, Pending> pending_;                  // guarded by mutex_
  std::map<uint64_t, std::function<void(bool)>> state_listeners_;  // guarded by mutex_
  uint64_t next_listener_ = 1;                                     // guarded by mutex_
  bool stopping_ = false;                                          // guarded by mutex_
  bool closed_ = false;                                            // guarded by mutex_
  std::condition_variable changed_;
  std::thread sweeper_;
};

}  // namespace shardkit::services
