#include "nats_link.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <future>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "nats_loop.h"
#include "shardkit/message/codec.h"
#include "shardkit/store/scheduler.h"
#include "wire.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace shardkit::services {
namespace {

// A batch is at most this large (and never larger than the server's max_payload).
constexpr int64_t kMaxBatchBytes = 64 * 1024;
// A request batch's numbers are kept this long, for NATS's "no responders" to it.
constexpr int64_t kBatchMemoryMs = 1'000;

// "<prefix>" and n when `reply` is a shardkit reply subject "<prefix><n>.sk", else n = 0.
std::string_view SplitReply(std::string_view reply, uint64_t& n) {
  n = 0;
  std::string_view prefix = InboxPrefix(reply);
  if (prefix.empty()) return {};
  std::string_view token =
      reply.substr(prefix.size(), reply.size() - prefix.size() - kReplyMark.size());
  size_t digits = 0;
  uint64_t value = LeadingNumber(token, &digits);
  if (digits == 0 || digits != token.size()) return {};
  n = value;
  return prefix;
}

int64_t ReconnectDelay(natsConnection*, int attempts, void*) {
  // 100 ms, doubling to 2 s, plus up to 25% jitter so restarted servers are not stampeded.
  int64_t delay = 100;
  for (int i = 1; i < attempts && delay < 2'000; ++i) delay *= 2;
  if (delay > 2'000) delay = 2'000;
  return delay + static_cast<int64_t>(std::rand() % (delay / 4 + 1));
}

struct ProcessCounters {
  std::atomic<uint64_t> links{0};  // transport and cluster links open now
  std::atomic<uint64_t> resent{0};
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> batched{0};
};
ProcessCounters g_counters;

struct LinkCache {
  std::mutex mutex;
  std::map<std::string, std::weak_ptr<NatsLink>> links;  // guarded by mutex
  static LinkCache& Get() {
    static auto* cache = new LinkCache();  // never destroyed: used until exit
    return *cache;
  }
};

// Which file's credentials a refused connection used, so the error names the file to check.
std::string SignedInWith(const Endpoint& endpoint) {
  const NatsAuthFiles& files = endpoint.nats_files;
  if (!files.creds_file.empty())
    return fmt::format(" with cluster.creds_file '{}'", files.creds_file);
  if (!files.nkey_seed_file.empty())
    return fmt::format(" with cluster.nkey_seed_file '{}'", files.nkey_seed_file);
  return "";
}

// Connects with `options`. libnats 3.4 (Debian 12's; fixed upstream by nats.c pull request 705)
// sends no signature when the Ed25519 signature of the server's nonce begins with a zero byte (its
// base64 encoder takes a leading zero for an empty input), so 1 in 256 sign-ins with an NKey seed
// or a creds file is refused although the key is right. Each try signs a fresh nonce: three tries
// leave 1 in 16 million, and a wrong key is still refused, three times.
natsStatus ConnectSigned(natsConnection** connection, natsOptions* options,
                         const NatsAuthFiles& files) {
  const int tries = files.nkey_seed_file.empty() && files.creds_file.empty() ? 1 : 3;
  natsStatus s = NATS_OK;
  for (int i = 0; i < tries; ++i) {
    *connection = nullptr;
    s = natsConnection_Connect(connection, options);
    if (s != NATS_CONNECTION_AUTH_FAILED) break;
  }
  return s;
}

}  // namespace

NatsLink::NatsLink(std::string url) : url_(std::move(url)) {}

// TLS (the server's certificate checked against tls_ca_file; a client certificate when given) and
// credentials from files. cnats reads the files here: a missing one is an error naming it.
Status NatsLink::Secure(natsOptions* options, const NatsAuthFiles& files) {
  auto failed = [&](natsStatus s, std::string_view key, const std::string& path) {
    return Status::Invalid(fmt::format(
        "{}: cluster.{} '{}': {}", url_, key, path,
        nats_GetLastError(nullptr) ? nats_GetLastError(nullptr) : natsStatus_GetText(s)));
  };
  if (files.tls()) {
    if (natsStatus s = natsOptions_SetSecure(options, true); s != NATS_OK)
      return NatsError(s, "nats TLS");
    if (!files.tls_ca_file.empty()) {
      natsStatus s = natsOptions_LoadCATrustedCertificates(options, files.tls_ca_file.c_str());
      if (s != NATS_OK) return failed(s, "tls_ca_file", files.tls_ca_file);
    }
    if (!files.tls_cert_file.empty()) {
      natsStatus s = natsOptions_LoadCertificatesChain(options, files.tls_cert_file.c_str(),
                                                       files.tls_key_file.c_str());
      if (s != NATS_OK) return failed(s, "tls_cert_file", files.tls_cert_file);
    }
  }
  if (!files.creds_file.empty()) {
    // cnats opens the file only when the server asks for a signature; a missing or unreadable
    // one is named here, not reported as a failed connection.
    if (std::ifstream(files.creds_file).fail()) {
      return Status::Invalid(fmt::format("{}: cluster.creds_file '{}': {}", url_, files.creds_file,
                                         std::strerror(errno)));
    }
    natsStatus s =
        natsOptions_SetUserCredentialsFromFiles(options, files.creds_file.c_str(), nullptr);
    if (s != NATS_OK) return failed(s, "creds_file", files.creds_file);
  }
  if (!files.nkey.empty()) {
    natsStatus s =
        natsOptions_SetNKeyFromSeed(options, files.nkey.c_str(), files.nkey_seed_file.c_str());
    if (s != NATS_OK) return failed(s, "nkey_seed_file", files.nkey_seed_file);
  }
  return Status::Ok();
}

Result<std::shared_ptr<NatsLink>> NatsLink::Shared(const Endpoint& endpoint, Use use) {
  const NatsAuthFiles& f = endpoint.nats_files;
  std::string key =
      fmt::format("{} {} {} {} {} {} {}", endpoint.ToSecretString(), f.tls_ca_file, f.tls_cert_file,
                  f.tls_key_file, f.creds_file, f.nkey, f.nkey_seed_file) +
      (use == Use::kCluster ? " cluster"
       : use == Use::kServe ? " serve"
                            : " call");
  auto& cache = LinkCache::Get();
  std::lock_guard<std::mutex> lock(cache.mutex);
  if (auto live = cache.links[key].lock()) return live;
  std::shared_ptr<NatsLink> link(new NatsLink(endpoint.ToString()));
  Status opened = link->Open(endpoint, use);
  if (!opened.ok()) return opened;
  cache.links[key] = link;
  return link;
}

Status NatsLink::Open(const Endpoint& endpoint, Use use) {
  natsOptions* options = nullptr;
  if (natsStatus s = natsOptions_Create(&options); s != NATS_OK)
    return NatsError(s, "nats options");
  if (use != Use::kCluster) {
    loop_ = std::make_unique<Loop>([this] { Flush(); });
    if (!loop_->ok()) {
      natsOptions_Destroy(options);
      return Status::Internal(fmt::format("{}: eventfd failed", url_));
    }
    // Published bytes go out on the I/O thread's next turn: no flusher thread, no 1 ms wait.
    natsOptions_SetEventLoop(options, loop_.get(), Loop::Attach, Loop::Read, Loop::Write,
                             Loop::Detach);
    natsOptions_SetSendAsap(options, true);
  }
  std::string target = endpoint.ToSecretString();  // cnats sends its credentials at connect
  natsOptions_SetURL(options, target.c_str());
  natsOptions_SetName(options, "shardkit");
  natsOptions_SetTimeout(options, 2'000);
  natsOptions_SetAllowReconnect(options, true);
  natsOptions_SetMaxReconnect(options, -1);
  natsOptions_SetCustomReconnectDelay(options, ReconnectDelay, nullptr);
  natsOptions_SetPingInterval(options, 2'000);
  natsOptions_SetMaxPingsOut(options, 2);
  natsOptions_SetDisconnectedCB(options, OnDisconnected, this);
  natsOptions_SetReconnectedCB(options, OnReconnected, this);
  natsOptions_SetClosedCB(options, OnClosed, this);
  if (Status secured = Secure(options, endpoint.nats_files); !secured.ok()) {
    natsOptions_Destroy(options);
    return secured;
  }
  natsStatus s = ConnectSigned(&connection_, options, endpoint.nats_files);
  natsOptions_Destroy(options);
  if (s != NATS_OK) {
    connection_ = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closed_ = true;
    }
    return NatsError(s, fmt::format("cannot connect to {}{}", url_, SignedInWith(endpoint)));
  }
  connected_.store(true, std::memory_order_release);
  natsInbox* inbox_name = nullptr;
  if (s = natsInbox_Create(&inbox_name); s != NATS_OK) return NatsError(s, "nats inbox");
  inbox_prefix_ = std::string(inbox_name) + ".";  // "_INBOX.<nuid>."
  natsInbox_Destroy(inbox_name);
  // Requests carry the reply subject `<prefix><seq>.sk`; shardkit listeners answer on
  // `<prefix><seq>.r` (AnswerSubject). NATS sends its "no responders" status to the reply subject
  // itself, and a synchronous subscription drops those (natsSubscription_NextMsg), so the two go
  // to different subscriptions: answers to one drained on the I/O thread, the rare statuses (and
  // answers from listeners that reply on the subject itself) to an asynchronous one.
  std::string marked = inbox_prefix_ + "*" + std::string(kReplyMark);
  std::string answers = inbox_prefix_ + "*" + std::string(kAnswerMark);
  if (loop_ != nullptr) {
    s = natsConnection_Subscribe(&inbox_, connection_, marked.c_str(), OnInboxMessage, this);
    if (s == NATS_OK) s = natsConnection_SubscribeSync(&answers_, connection_, answers.c_str());
    if (s == NATS_OK) {
      s = natsSubscription_SetPendingLimits(answers_, -1, -1);
      AddInline(answers_, [this](natsMsg* msg) { HandleReply(msg); });
    }
  } else {
    std::string all = inbox_prefix_ + ">";
    s = natsConnection_Subscribe(&inbox_, connection_, all.c_str(), OnInboxMessage, this);
  }
  if (s == NATS_OK) s = natsSubscription_SetPendingLimits(inbox_, -1, -1);
  if (s != NATS_OK) return NatsError(s, fmt::format("{}: cannot subscribe to the inbox", url_));
  counted_ = true;
  g_counters.links.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("nats: connected to {}", url_);
  return Status::Ok();
}

NatsLink::~NatsLink() {
  if (counted_) g_counters.links.fetch_sub(1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  std::vector<uint64_t> sweeps;
  {
    std::lock_guard<std::mutex> lock(sweep_mu_);
    sweep_stopped_ = true;
    sweeps.swap(sweep_tasks_);
  }
  for (uint64_t task : sweeps) store::Scheduler::Shared().Cancel(task);  // waits for a running one
  FailAll(Status::Unavailable(fmt::format("connection to {} closed", url_)));
  if (connection_ == nullptr) return;
  for (natsSubscription* sub : {inbox_, answers_}) {
    if (sub == nullptr) continue;
    // Drained, so no reply callback is still running with `this` once it completes.
    if (OnIoThread() || natsSubscription_Drain(sub) != NATS_OK ||
        natsSubscription_WaitForDrainCompletion(sub, 2'000) != NATS_OK)
      natsSubscription_Unsubscribe(sub);
    RemoveInline(sub);
    natsSubscription_Destroy(sub);
  }
  natsConnection_Close(connection_);
  // The closed callback is the last one cnats makes with `this`: wait for it (bounded).
  {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, std::chrono::seconds(5), [this] { return closed_; });
  }
  loop_.reset();  // the I/O thread no longer touches the connection
  natsConnection_Destroy(connection_);
}

void NatsLink::AddInline(natsSubscription* sub, std::function<void(natsMsg*)> fn) {
  if (loop_ != nullptr) loop_->AddInline(sub, std::move(fn));
}

void NatsLink::RemoveInline(natsSubscription* sub) {
  if (loop_ != nullptr) loop_->RemoveInline(sub);
}

bool NatsLink::OnIoThread() const { return loop_ != nullptr && loop_->OnThread(); }

NatsLink::ProcessStats NatsLink::InProcess() {
  return {g_counters.links.load(std::memory_order_relaxed),
          g_counters.resent.load(std::memory_order_relaxed),
          g_counters.batches.load(std::memory_order_relaxed),
          g_counters.batched.load(std::memory_order_relaxed)};
}

int64_t NatsLink::max_payload() const { return natsConnection_GetMaxPayload(connection_); }

void NatsLink::Request(const std::string& subject, std::string payload, std::string id,
                       RequestOptions options, ReplyFn reply) {
  if (!connected()) {
    reply(Status::Unavailable(
        fmt::format("not connected to {} (reconnecting); '{}' was not sent", url_, subject)));
    return;
  }
  int64_t max_bytes = max_payload();
  if (static_cast<int64_t>(payload.size()) > max_bytes) {
    reply(Status::Invalid(fmt::format("message of {} bytes exceeds the NATS server's max_payload "
                                      "of {} bytes ({})",
                                      payload.size(), max_bytes, url_),
                          "{\"http_status\":413}"));
    return;
  }
  if (!options.expect_reply) {
    natsStatus s = natsConnection_Publish(connection_, subject.c_str(), payload.data(),
                                          static_cast<int>(payload.size()));
    if (s != NATS_OK) {
      reply(NatsError(s, fmt::format("publish to {} on {}", subject, url_)));
      return;
    }
    Message ack;
    ack.SetBool("published", true).SetString("subject", subject);
    ack.meta().id = std::move(id);
    reply(std::move(ack));
    return;
  }
  uint64_t seq = next_.fetch_add(1, std::memory_order_relaxed);
  int64_t now = NowMs();
  int64_t resend_at = options.resend_after_ms > 0 && options.resend_after_ms < options.budget_ms
                          ? now + options.resend_after_ms
                          : 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.emplace(seq, Pending{subject, resend_at != 0 ? payload : std::string(), std::move(id),
                                  now + options.budget_ms, resend_at, options.resend_after_ms,
                                  std::move(reply)});
  }
  ArmSweep(resend_at != 0 ? resend_at : now + options.budget_ms);
  if (loop_ != nullptr) {  // out in the I/O thread's next turn, batched with its neighbours
    Enqueue(requests_out_, subject, seq, payload, true,
            static_cast<size_t>(std::min<int64_t>(kMaxBatchBytes, max_bytes)));
    return;
  }
  fmt::basic_memory_buffer<char, 80> reply_subject;
  fmt::format_to(std::back_inserter(reply_subject), "{}{}{}", inbox_prefix_, seq, kReplyMark);
  reply_subject.push_back('\0');
  natsStatus s = natsConnection_PublishRequest(connection_, subject.c_str(), reply_subject.data(),
                                               payload.data(), static_cast<int>(payload.size()));
  if (s != NATS_OK) {
    ReplyFn fn;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = pending_.find(seq);
      if (it == pending_.end()) return;
      fn = std::move(it->second.reply);
      pending_.erase(it);
    }
    fn(NatsError(s, fmt::format("request to {} on {}", subject, url_)));
  }
}

void NatsLink::Answer(std::string_view reply, std::string_view payload) {
  uint64_t n = 0;
  std::string_view prefix = SplitReply(reply, n);
  if (loop_ != nullptr && n != 0) {
    int64_t limit = std::min<int64_t>(kMaxBatchBytes, max_payload());
    Enqueue(answers_out_, prefix, n, payload, false, static_cast<size_t>(limit));
    return;
  }
  std::string subject = AnswerSubject(reply);
  natsStatus s = natsConnection_Publish(connection_, subject.c_str(), payload.data(),
                                        static_cast<int>(payload.size()));
  if (s != NATS_OK) spdlog::debug("nats {}: answer not sent: {}", url_, natsStatus_GetText(s));
}

void NatsLink::Enqueue(Outbox& box, std::string_view key, uint64_t n, std::string_view body,
                       bool request, size_t max_batch_bytes) {
  {
    std::lock_guard<std::mutex> lock(out_mutex_);
    auto it = box.find(key);
    if (it == box.end()) it = box.emplace(std::string(key), std::vector<Outgoing>()).first;
    std::vector<Outgoing>& outs = it->second;
    if (outs.empty() ||
        (outs.back().count > 0 && outs.back().batch.size() + body.size() + 32 > max_batch_bytes)) {
      outs.emplace_back();
      outs.back().batch.append(kBatchMagic);
    }
    Outgoing& out = outs.back();
    if (out.count == 0) out.first_n = n;
    AppendBatchItem(out.batch, n, body);
    if (out.count == 0) out.first_body = out.batch.size() - body.size();
    ++out.count;
    if (request) out.ns.push_back(n);
  }
  loop_->MarkOutbox();
}

void NatsLink::Flush() {
  Outbox requests, answers;
  {
    std::lock_guard<std::mutex> lock(out_mutex_);
    requests.swap(requests_out_);
    answers.swap(answers_out_);
  }
  for (auto& [subject, outs] : requests)
    for (Outgoing& out : outs) PublishRequests(subject, out);
  fmt::basic_memory_buffer<char, 80> to;
  for (auto& [prefix, outs] : answers) {
    for (Outgoing& out : outs) {
      to.clear();
      std::string_view body(out.batch);
      if (out.count == 1) {
        fmt::format_to(std::back_inserter(to), "{}{}{}", prefix, out.first_n, kAnswerMark);
        body = body.substr(out.first_body);
      } else {
        fmt::format_to(std::back_inserter(to), "{}a{}", prefix, kAnswerMark);
        g_counters.batches.fetch_add(1, std::memory_order_relaxed);
        g_counters.batched.fetch_add(out.count, std::memory_order_relaxed);
      }
      to.push_back('\0');
      natsStatus s = natsConnection_Publish(connection_, to.data(), body.data(),
                                            static_cast<int>(body.size()));
      if (s != NATS_OK)
        spdlog::debug("nats {}: {} answer(s) not sent: {}", url_, out.count, natsStatus_GetText(s));
    }
  }
}

void NatsLink::PublishRequests(const std::string& subject, Outgoing& out) {
  fmt::basic_memory_buffer<char, 80> reply;
  std::string_view body(out.batch);
  uint64_t batch = 0;
  if (out.count == 1) {
    fmt::format_to(std::back_inserter(reply), "{}{}{}", inbox_prefix_, out.first_n, kReplyMark);
    body = body.substr(out.first_body);
  } else {
    batch = next_batch_++;
    g_counters.batches.fetch_add(1, std::memory_order_relaxed);
    g_counters.batched.fetch_add(out.count, std::memory_order_relaxed);
    fmt::format_to(std::back_inserter(reply), "{}b{}{}", inbox_prefix_, batch, kReplyMark);
    int64_t now = NowMs();
    std::lock_guard<std::mutex> lock(mutex_);
    while (!sent_batches_.empty() && sent_batches_.front().sent_ms + kBatchMemoryMs < now)
      sent_batches_.pop_front();
    sent_batches_.push_back(SentBatch{now, batch, out.ns});
  }
  reply.push_back('\0');
  natsStatus s = natsConnection_PublishRequest(connection_, subject.c_str(), reply.data(),
                                               body.data(), static_cast<int>(body.size()));
  if (s != NATS_OK) Fail(out.ns, NatsError(s, fmt::format("request to {} on {}", subject, url_)));
}

void NatsLink::Fail(const std::vector<uint64_t>& ns, const Status& status) {
  std::vector<Pending> failed;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (uint64_t n : ns) {
      auto it = pending_.find(n);
      if (it == pending_.end()) continue;  // answered meanwhile
      failed.push_back(std::move(it->second));
      pending_.erase(it);
    }
  }
  for (Pending& pending : failed) pending.reply(status);
}

void NatsLink::OnInboxMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  static_cast<NatsLink*>(closure)->HandleReply(msg);
  natsMsg_Destroy(msg);
}

void NatsLink::HandleReply(natsMsg* msg) {
  std::string_view subject = natsMsg_GetSubject(msg);
  std::string_view token = subject.substr(std::min(inbox_prefix_.size(), subject.size()));
  std::string_view data(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
  bool no_responders = natsMsg_IsNoResponders(msg);
  if (!token.empty() && (token[0] == 'a' || token[0] == 'b')) {
    if (token[0] == 'b' && no_responders) {  // a request batch nobody subscribes to
      uint64_t batch = LeadingNumber(token.substr(1));
      std::vector<uint64_t> ns;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto& sent : sent_batches_) {
          if (sent.id != batch) continue;
          ns.swap(sent.ns);
          break;
        }
      }
      for (uint64_t n : ns) Complete(n, {}, true);
      return;
    }
    if (token[0] != 'a' || !IsBatch(data)) return;
    std::vector<BatchItem> items;
    Status parsed = ParseBatch(data, items);
    if (!parsed.ok()) spdlog::warn("nats {}: answer batch: {}", url_, parsed.message());
    for (const BatchItem& item : items) Complete(item.n, item.body, false);
    return;
  }
  Complete(LeadingNumber(token), data, no_responders);
}

void NatsLink::Complete(uint64_t seq, std::string_view data, bool no_responders) {
  Pending pending;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = pending_.find(seq);
    if (it == pending_.end()) {
      return;  // answered already (timeout) or a second reply to a resent request
    }
    pending = std::move(it->second);
    pending_.erase(it);
  }
  if (no_responders) {
    pending.reply(
        Status::Unavailable(fmt::format("no service on {} serves '{}'", url_, pending.subject)));
    return;
  }
  auto parsed = ParseMessage(data);
  if (!parsed.ok()) {
    pending.reply(Status::Internal(
        fmt::format("unreadable reply from {}: {}", pending.subject, parsed.status().message())));
    return;
  }
  Message message = std::move(parsed).value();
  if (message.Has("error$")) {
    pending.reply(FromWire(std::move(message)));
    return;
  }
  message.meta() = Meta{};
  message.meta().id = std::move(pending.id);
  pending.reply(std::move(message));
}

void NatsLink::ArmSweep(int64_t due_ms) {
  int64_t armed = sweep_due_ms_.load(std::memory_order_acquire);
  if (armed != 0 && armed <= due_ms) return;  // the common case under load: no lock
  std::lock_guard<std::mutex> lock(sweep_mu_);
  armed = sweep_due_ms_.load(std::memory_order_relaxed);
  if (sweep_stopped_ || (armed != 0 && armed <= due_ms)) return;
  sweep_due_ms_.store(due_ms, std::memory_order_release);
  // The task learns its id under sweep_mu_, which it takes before it reads it.
  auto task = std::make_shared<uint64_t>(0);
  // +1: NowMs() and the scheduler's steady clock tick apart; a sweep a little late finds the
  // request due instead of setting itself again for the same millisecond.
  auto delay = std::chrono::milliseconds(std::max<int64_t>(0, due_ms - NowMs()) + 1);
  *task = store::Scheduler::Shared().After(delay, [this, task] { Sweep(task); });
  if (*task != 0) sweep_tasks_.push_back(*task);
}

void NatsLink::Sweep(const std::shared_ptr<uint64_t>& task) {
  int64_t now = NowMs();
  // Requests sent from here on set a sweep of their own when due before the next one below.
  sweep_due_ms_.store(0, std::memory_order_release);
  std::vector<Pending> expired;
  std::vector<std::pair<uint64_t, Pending*>> resend;
  int64_t next_due = 0;
  std::unique_lock<std::mutex> lock(mutex_);
  for (auto it = pending_.begin(); it != pending_.end();) {
    Pending& p = it->second;
    if (p.deadline_ms <= now) {
      expired.push_back(std::move(p));
      it = pending_.erase(it);
      continue;
    }
    if (p.resend_at_ms != 0 && p.resend_at_ms <= now) {
      // Again after twice as long each time (300, 600, 1200 ms…) until the deadline: a copy
      // sent while the first was only slow may go to the instance that then dies too, and the
      // doubling keeps a slow service from being flooded with copies.
      p.resend_every_ms *= 2;
      p.resend_at_ms = now + p.resend_every_ms < p.deadline_ms ? now + p.resend_every_ms : 0;
      resend.emplace_back(it->first, &p);
    }
    int64_t due = p.resend_at_ms != 0 ? p.resend_at_ms : p.deadline_ms;
    if (next_due == 0 || due < next_due) next_due = due;
    ++it;
  }
  for (auto& [seq, pending] : resend) {
    std::string reply_subject = fmt::format("{}{}{}", inbox_prefix_, seq, kReplyMark);
    if (connected()) {
      natsConnection_PublishRequest(connection_, pending->subject.c_str(), reply_subject.c_str(),
                                    pending->payload.data(),
                                    static_cast<int>(pending->payload.size()));
      resent_.fetch_add(1, std::memory_order_relaxed);
      g_counters.resent.fetch_add(1, std::memory_order_relaxed);
    }
  }
  lock.unlock();
  for (Pending& pending : expired)
    pending.reply(
        Status::Timeout(fmt::format("no reply from {} on {} in time", pending.subject, url_)));
  if (next_due != 0) ArmSweep(next_due);
  // Last: once its id is gone, the destructor no longer waits for this run.
  std::lock_guard<std::mutex> done(sweep_mu_);
  std::erase(sweep_tasks_, *task);
}

void NatsLink::FailAll(const Status& status) {
  std::unordered_map<uint64_t, Pending> pending;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending.swap(pending_);
  }
  for (auto& [seq, p] : pending) p.reply(status);
}

uint64_t NatsLink::OnStateChange(std::function<void(bool)> fn) {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t id = next_listener_++;
  state_listeners_.emplace(id, std::move(fn));
  return id;
}

void NatsLink::RemoveStateListener(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  state_listeners_.erase(id);
}

void NatsLink::StateChanged(bool connected) {
  connected_.store(connected, std::memory_order_release);
  if (!connected) {
    spdlog::warn("nats: connection to {} lost; reconnecting with backoff", url_);
    FailAll(Status::Unavailable(fmt::format("connection to {} lost", url_)));
  } else {
    spdlog::info("nats: reconnected to {}", url_);
  }
  std::vector<std::function<void(bool)>> listeners;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [id, fn] : state_listeners_) listeners.push_back(fn);
  }
  for (auto& fn : listeners) fn(connected);
}

void NatsLink::OnDisconnected(natsConnection*, void* closure) {
  auto* self = static_cast<NatsLink*>(closure);
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    if (self->stopping_) return;
  }
  self->StateChanged(false);
}

void NatsLink::OnReconnected(natsConnection*, void* closure) {
  static_cast<NatsLink*>(closure)->StateChanged(true);
}

void NatsLink::OnClosed(natsConnection*, void* closure) {
  auto* self = static_cast<NatsLink*>(closure);
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    self->closed_ = true;
  }
  self->changed_.notify_all();
}

}  // namespace shardkit::services
