// Internal: one connection to a NATS server (the cnats C client), shared in a process by every
// NATS listener, client and cluster agent that names the same server. nats.h stays inside
// services/ (transport/nats_link.cc, transport/nats.cc, node/cluster.cc, node/kv_watch.cc).
//
// The connection reconnects forever with a growing delay (100 ms doubling to 2 s, with jitter);
// while it is down, new requests answer `unavailable` at once and requests in flight when it
// dropped answer `unavailable` (never hang). Subscriptions come back by themselves on reconnect.
//
// Requests: Request() publishes with a reply subject in this link's own inbox
// (`_INBOX.<nuid>.<n>.sk`, answered on `_INBOX.<nuid>.<n>.r`), so many requests share one
// subscription and replies are matched by n. On transport links requests and answers are queued
// and sent in the I/O thread's next turn, several for one destination as one batch (below).
// A timer on the process's store::Scheduler, set for the earliest due time of a pending request
// (none while nothing is pending), answers `timeout` at each request's deadline and, when
// `resend_after_ms` is set, sends a request that has had no reply in that time again, with the
// same meta$.id and payload (idempotency key included), then after twice as long each time until
// its deadline (the instance that took it may have died; NATS gives the copy to another member of
// the queue group).
//
// Two kinds of link (docs/cluster.md, "Threads"): the transport's (listeners, clients) runs its
// connection on one I/O thread of its own (cnats' event-loop mode: that thread reads, parses and
// writes, publishing needs no flusher thread) and hands the messages of its inline subscriptions
// to their handlers on that thread, with no hand-off; the cluster agent's (JetStream KV, blocking
// calls) is a classic cnats connection with its reader and flusher threads, so a blocking KV call
// never waits on the thread that would read its answer.
//
// Thread-safety: every method is safe from any thread. Replies come on cnats or I/O threads,
// `timeout` answers on the scheduler's. A handler run on the I/O thread must not block on a reply
// over the same link.
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

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

// The reply subject of a shardkit request ends with kReplyMark; its answer goes to the same
// subject with kAnswerMark instead (AnswerSubject), any other reply subject gets the answer itself.
// NATS's own "no responders" status still goes to the reply subject, so the client tells the two
// apart by subscription (nats_link.cc).
inline constexpr std::string_view kReplyMark = ".sk";
inline constexpr std::string_view kAnswerMark = ".r";
std::string AnswerSubject(std::string_view reply);

// Batches (docs/cluster.md, "Batches"). Requests a link is handed for one subject, and answers for
// one requesting connection, between two turns of its I/O thread go out as one NATS message when
// there are several: kBatchMagic, then each item as "<n> <length>\n<bytes>", where n is the
// request's number in its sender's inbox. A request batch has the reply subject
// `<inbox prefix>b<batch>.sk` (item n's own reply subject is `<inbox prefix><n>.sk`); an answer
// batch goes to `<inbox prefix>a.r`. One item alone goes out as a plain message, as before.
inline constexpr std::string_view kBatchMagic = "SKB1\n";
struct BatchItem {
  uint64_t n = 0;
  std::string_view body;
};
bool IsBatch(std::string_view payload);
// "<prefix>" of a shardkit reply subject "<prefix><token>.sk" (token: n, or b<batch>), else "".
std::string_view InboxPrefix(std::string_view reply);
// The items of a batch, in order; `invalid` naming the offset and the problem when the framing is
// broken (the items before it are in `items`).
Status ParseBatch(std::string_view payload, std::vector<BatchItem>& items);
void AppendBatchItem(std::string& batch, uint64_t n, std::string_view body);

// The number `text` starts with (0 when none); `digits` gets how many characters it took.
uint64_t LeadingNumber(std::string_view text, size_t* digits = nullptr);

// A natsStatus as a Status (`unavailable` for connection problems, `timeout`, else `internal`).
Status NatsError(natsStatus status, std::string_view what);

class NatsLink {
 public:
  // kServe: listeners (requests in, replies out); kCall: clients (requests out, replies in);
  // kCluster: the cluster agent. Each is a connection of its own, so a node's incoming and
  // outgoing traffic run on two I/O threads.
  enum class Use { kServe, kCall, kCluster };
  // The live link of this `use` to `endpoint` in this process, or a new one. `unavailable` naming
  // the URL when the server cannot be reached now.
  static Result<std::shared_ptr<NatsLink>> Shared(const Endpoint& endpoint, Use use);
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

  // Publishes `payload`, the answer to a request whose reply subject is `reply`, on
  // AnswerSubject(reply); answers to one shardkit requester are batched (transport links).
  void Answer(std::string_view reply, std::string_view payload);

  // Calls `fn(connected)` on a cnats thread each time the connection drops or comes back.
  uint64_t OnStateChange(std::function<void(bool)> fn);
  void RemoveStateListener(uint64_t id);

  // Requests resent (cumulative) by this link.
  uint64_t resent() const { return resent_.load(std::memory_order_relaxed); }
  // Every link of the process: open now; requests resent, batches sent (requests and answers)
  // and the items they carried (cumulative).
  struct ProcessStats {
    uint64_t links = 0;
    uint64_t resent = 0;
    uint64_t batches = 0;
    uint64_t batched = 0;
  };
  static ProcessStats InProcess();

  // Transport links only. `sub` (a synchronous subscription on this link's connection) is drained
  // on the I/O thread right after each read: `fn` gets each message (and owns it), in order.
  void AddInline(natsSubscription* sub, std::function<void(natsMsg*)> fn);
  // After this returns, `fn` is not running and is not called again for `sub`.
  void RemoveInline(natsSubscription* sub);
  // True on this link's I/O thread (where a blocking wait for the server would never end).
  bool OnIoThread() const;

 private:
  class Loop;
  NatsLink(std::string url);
  Status Open(const Endpoint& endpoint, Use use);
  Status Secure(natsOptions* options, const NatsAuthFiles& files);
  struct Pending {
    std::string subject;
    std::string payload;
    std::string id;
    int64_t deadline_ms;
    int64_t resend_at_ms;     // 0: never
    int64_t resend_every_ms;  // the wait before the next copy; doubles at each copy
    ReplyFn reply;
  };
  // Items waiting for the I/O thread's next turn: requests for one subject, or answers for one
  // requester's inbox prefix. `batch` starts with kBatchMagic.
  struct Outgoing {
    std::string batch;
    size_t count = 0;
    uint64_t first_n = 0;
    size_t first_body = 0;     // where the first item's bytes start in `batch`
    std::vector<uint64_t> ns;  // requests: the items' numbers
  };
  struct KeyHash {  // lets the outboxes be searched with a string_view
    using is_transparent = void;
    size_t operator()(std::string_view key) const { return std::hash<std::string_view>()(key); }
  };
  using Outbox = std::unordered_map<std::string, std::vector<Outgoing>, KeyHash, std::equal_to<>>;
  struct SentBatch {
    int64_t sent_ms;
    uint64_t id;
    std::vector<uint64_t> ns;
  };
  void Enqueue(Outbox& box, std::string_view key, uint64_t n, std::string_view body, bool request,
               size_t max_batch_bytes);
  void Flush();  // on the I/O thread, once per turn
  void PublishRequests(const std::string& subject, Outgoing& out);
  void Fail(const std::vector<uint64_t>& ns, const Status& status);
  static void OnInboxMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);
  void HandleReply(natsMsg* msg);  // does not destroy `msg`
  void Complete(uint64_t n, std::string_view data, bool no_responders);
  static void OnDisconnected(natsConnection*, void* closure);
  static void OnReconnected(natsConnection*, void* closure);
  static void OnClosed(natsConnection*, void* closure);
  void StateChanged(bool connected);
  void FailAll(const Status& status);
  // Sets a sweep for `due_ms` unless one is set for then or earlier.
  void ArmSweep(int64_t due_ms);
  // The scheduler task: answers expired requests, resends due ones, sets the next sweep.
  void Sweep(const std::shared_ptr<uint64_t>& task);

  const std::string url_;
  std::unique_ptr<Loop> loop_;  // transport links: the I/O thread
  natsConnection* connection_ = nullptr;
  natsSubscription* inbox_ = nullptr;    // `<prefix>*.sk` (transport) or `<prefix>>` (cluster)
  natsSubscription* answers_ = nullptr;  // transport links: `<prefix>*.r`, drained inline
  std::string inbox_prefix_;             // "_INBOX.<nuid>."
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> next_{1};
  std::atomic<uint64_t> resent_{0};
  bool counted_ = false;  // in ProcessStats::links

  std::mutex mutex_;
  std::unordered_map<uint64_t, Pending> pending_;                  // guarded by mutex_
  std::map<uint64_t, std::function<void(bool)>> state_listeners_;  // guarded by mutex_
  uint64_t next_listener_ = 1;                                     // guarded by mutex_
  bool stopping_ = false;                                          // guarded by mutex_
  bool closed_ = false;                                            // guarded by mutex_
  std::deque<SentBatch> sent_batches_;  // guarded by mutex_: the last second's request batches
  uint64_t next_batch_ = 1;             // I/O thread only

  std::mutex out_mutex_;
  Outbox requests_out_;  // guarded by out_mutex_
  Outbox answers_out_;   // guarded by out_mutex_

  std::condition_variable changed_;

  // The earliest due time a sweep is set for, 0 when none: Request() takes sweep_mu_ only when
  // its request is due sooner.
  std::atomic<int64_t> sweep_due_ms_{0};
  std::mutex sweep_mu_;
  std::vector<uint64_t> sweep_tasks_;  // guarded by sweep_mu_: scheduled or running sweeps
  bool sweep_stopped_ = false;         // guarded by sweep_mu_
};

}  // namespace shardkit::services
