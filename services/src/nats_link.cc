#include "nats_link.h"

#include <chrono>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "shardkit/message/codec.h"
#include "wire.h"

namespace shardkit::services {
namespace {

constexpr auto kSweepInterval = std::chrono::milliseconds(10);

int64_t ReconnectDelay(natsConnection*, int attempts, void*) {
  // 100 ms, doubling to 2 s, plus up to 25% jitter so restarted servers are not stampeded.
  int64_t delay = 100;
  for (int i = 1; i < attempts && delay < 2'000; ++i) delay *= 2;
  if (delay > 2'000) delay = 2'000;
  return delay + static_cast<int64_t>(std::rand() % (delay / 4 + 1));
}

struct LinkCache {
  std::mutex mutex;
  std::map<std::string, std::weak_ptr<NatsLink>> links;  // guarded by mutex
  static LinkCache& Get() {
    static auto* cache = new LinkCache();  // never destroyed: used until exit
    return *cache;
  }
};

}  // namespace

std::string EscapeSubjectToken(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || u >= 0x7f || c == '.' || c == '*' || c == '>' || c == '~') {
      out += fmt::format("~{:02x}", u);
    } else {
      out += c;
    }
  }
  if (out.empty()) out = "~";
  return out;
}

std::string PatternSubject(std::string_view canonical_pattern) {
  return "shardkit.p." + EscapeSubjectToken(canonical_pattern);
}

std::string InfoSubject(std::string_view info_value) {
  return "shardkit.info." + EscapeSubjectToken(info_value);
}

Status NatsError(natsStatus status, std::string_view what) {
  std::string text = natsStatus_GetText(status);
  natsStatus ignored;
  const char* last = nats_GetLastError(&ignored);
  if (last != nullptr && *last != '\0' && text.find(last) == std::string::npos)
    text += fmt::format(" ({})", last);
  std::string message = fmt::format("{}: {}", what, text);
  switch (status) {
    case NATS_TIMEOUT:
      return Status::Timeout(std::move(message));
    case NATS_NO_SERVER:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_STALE_CONNECTION:
    case NATS_NO_RESPONDERS:
    case NATS_IO_ERROR:
    case NATS_NOT_YET_CONNECTED:
      return Status::Unavailable(std::move(message));
    default:
      return Status::Internal(std::move(message));
  }
}

NatsLink::NatsLink(std::string url) : url_(std::move(url)) {}

Result<std::shared_ptr<NatsLink>> NatsLink::Shared(const Endpoint& endpoint) {
  std::string url = endpoint.ToString();
  auto& cache = LinkCache::Get();
  std::lock_guard<std::mutex> lock(cache.mutex);
  if (auto live = cache.links[url].lock()) return live;
  std::shared_ptr<NatsLink> link(new NatsLink(url));
  Status opened = link->Open(endpoint);
  if (!opened.ok()) return opened;
  cache.links[url] = link;
  return link;
}

Status NatsLink::Open(const Endpoint& endpoint) {
  natsOptions* options = nullptr;
  if (natsStatus s = natsOptions_Create(&options); s != NATS_OK)
    return NatsError(s, "nats options");
  std::string target = fmt::format("nats://{}:{}", endpoint.host, endpoint.port);
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
  natsStatus s = natsConnection_Connect(&connection_, options);
  natsOptions_Destroy(options);
  if (s != NATS_OK) {
    connection_ = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closed_ = true;
    }
    return NatsError(s, fmt::format("cannot connect to {}", url_));
  }
  connected_.store(true, std::memory_order_release);
  natsInbox* inbox_name = nullptr;
  if (s = natsInbox_Create(&inbox_name); s != NATS_OK) return NatsError(s, "nats inbox");
  inbox_prefix_ = std::string(inbox_name) + ".";  // "_INBOX.<nuid>."
  natsInbox_Destroy(inbox_name);
  std::string inbox = inbox_prefix_ + "*";
  s = natsConnection_Subscribe(&inbox_, connection_, inbox.c_str(), OnInboxMessage, this);
  if (s == NATS_OK) s = natsSubscription_SetPendingLimits(inbox_, -1, -1);
  if (s != NATS_OK) return NatsError(s, fmt::format("{}: cannot subscribe to the inbox", url_));
  sweeper_ = std::thread([this] { Sweep(); });
  spdlog::info("nats: connected to {}", url_);
  return Status::Ok();
}

NatsLink::~NatsLink() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
  FailAll(Status::Unavailable(fmt::format("connection to {} closed", url_)));
  if (connection_ == nullptr) return;
  if (inbox_ != nullptr) {
    // Drained, so no reply callback is still running with `this` once it completes.
    if (natsSubscription_Drain(inbox_) != NATS_OK ||
        natsSubscription_WaitForDrainCompletion(inbox_, 2'000) != NATS_OK)
      natsSubscription_Unsubscribe(inbox_);
    natsSubscription_Destroy(inbox_);
  }
  natsConnection_Close(connection_);
  // The closed callback is the last one cnats makes with `this`: wait for it (bounded).
  {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, std::chrono::seconds(5), [this] { return closed_; });
  }
  natsConnection_Destroy(connection_);
}

int64_t NatsLink::max_payload() const { return natsConnection_GetMaxPayload(connection_); }

void NatsLink::Request(const std::string& subject, std::string payload, std::string id,
                       RequestOptions options, ReplyFn reply) {
  if (!connected()) {
    reply(Status::Unavailable(
        fmt::format("not connected to {} (reconnecting); '{}' was not sent", url_, subject)));
    return;
  }
  if (static_cast<int64_t>(payload.size()) > max_payload()) {
    reply(Status::Invalid(fmt::format("message of {} bytes exceeds the NATS server's max_payload "
                                      "of {} bytes ({})",
                                      payload.size(), max_payload(), url_),
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
  std::string reply_subject = inbox_prefix_ + std::to_string(seq);
  int64_t now = NowMs();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    int64_t resend_at = options.resend_after_ms > 0 && options.resend_after_ms < options.budget_ms
                            ? now + options.resend_after_ms
                            : 0;
    pending_.emplace(seq, Pending{subject, resend_at != 0 ? payload : std::string(), std::move(id),
                                  now + options.budget_ms, resend_at, std::move(reply)});
  }
  natsStatus s = natsConnection_PublishRequest(connection_, subject.c_str(), reply_subject.c_str(),
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

void NatsLink::OnInboxMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto* self = static_cast<NatsLink*>(closure);
  std::string_view subject = natsMsg_GetSubject(msg);
  uint64_t seq = 0;
  for (char c : subject.substr(self->inbox_prefix_.size())) {
    if (c < '0' || c > '9') break;
    seq = seq * 10 + static_cast<uint64_t>(c - '0');
  }
  Pending pending;
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    auto it = self->pending_.find(seq);
    if (it == self->pending_.end()) {
      natsMsg_Destroy(msg);
      return;  // answered already (timeout) or a second reply to a resent request
    }
    pending = std::move(it->second);
    self->pending_.erase(it);
  }
  if (natsMsg_IsNoResponders(msg)) {
    natsMsg_Destroy(msg);
    pending.reply(Status::Unavailable(
        fmt::format("no service on {} serves '{}'", self->url_, pending.subject)));
    return;
  }
  std::string_view data(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
  auto parsed = ParseMessage(data);
  natsMsg_Destroy(msg);
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

void NatsLink::Sweep() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    changed_.wait_for(lock, kSweepInterval);
    if (stopping_) break;
    int64_t now = NowMs();
    std::vector<Pending> expired;
    std::vector<std::pair<uint64_t, Pending*>> resend;
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.deadline_ms <= now) {
        expired.push_back(std::move(it->second));
        it = pending_.erase(it);
        continue;
      }
      if (it->second.resend_at_ms != 0 && it->second.resend_at_ms <= now) {
        it->second.resend_at_ms = 0;  // once: a second copy is enough to route around one death
        resend.emplace_back(it->first, &it->second);
      }
      ++it;
    }
    for (auto& [seq, pending] : resend) {
      std::string reply_subject = inbox_prefix_ + std::to_string(seq);
      if (connected()) {
        natsConnection_PublishRequest(connection_, pending->subject.c_str(), reply_subject.c_str(),
                                      pending->payload.data(),
                                      static_cast<int>(pending->payload.size()));
        resent_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    lock.unlock();
    for (Pending& pending : expired)
      pending.reply(
          Status::Timeout(fmt::format("no reply from {} on {} in time", pending.subject, url_)));
    lock.lock();
  }
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
