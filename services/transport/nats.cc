// The NATS transport (docs/cluster.md): a listener subscribes to subjects on a NATS server, a
// client publishes requests there and waits for the reply on its link's inbox (nats_link.h).
//
// Listener subscriptions:
//   shardkit.node        queue group `shardkit`: any node takes it and routes it by its whole table
//   shardkit.p.<P>       queue group `shardkit`, one per pattern P served by this node's services:
//                        each request goes to exactly one instance (winner-take-all)
//   shardkit.info.>      no queue group, only when a service serves a pattern with an `info`
//                        property: every such node gets every fire-and-forget message
// A message is parsed with the listener's size limit and admitted like on every transport
// (AdmitIncoming); its reply is published to the request's reply subject.
#include <atomic>
#include <map>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "nats_link.h"
#include "shardkit/message/pattern.h"
#include "wire.h"

namespace shardkit::services {
namespace {

struct ListenerCore {
  ListenerConfig config;
  ListenerHooks hooks;
  std::shared_ptr<NatsLink> link;
};

// `reply`: the request's reply subject (empty: fire-and-forget, nobody waits).
void PublishReply(NatsLink& link, const std::string& reply, Result<Message> result,
                  const std::string& id, size_t max_bytes) {
  if (reply.empty()) return;
  thread_local std::string out;  // reused: the link copies it
  out.clear();
  AppendReplyJson(std::move(result), id, max_bytes, out);
  link.Answer(reply, out);
  if (out.capacity() > 64 * 1024) std::string().swap(out);  // no large reply kept per thread
}

// One request (a message's JSON), answered on `reply`.
void DeliverOne(ListenerCore* core, std::string_view data, std::string reply, bool local_only) {
  CodecLimits limits;
  limits.max_bytes = core->config.max_message_bytes;
  auto parsed = ParseMessage(data, limits);
  if (!parsed.ok()) {
    PublishReply(*core->link, reply, parsed.status(), {}, core->config.max_reply_bytes);
    return;
  }
  Message message = std::move(parsed).value();
  std::string id = message.meta().id;
  Status admitted =
      AdmitIncoming(message, core->config, core->hooks, AnonymousCaller(core->config), NowMs());
  if (!admitted.ok()) {
    PublishReply(*core->link, reply, std::move(admitted), id, core->config.max_reply_bytes);
    return;
  }
  const DispatchFn& dispatch =
      local_only && core->hooks.dispatch_local ? core->hooks.dispatch_local : core->hooks.dispatch;
  dispatch(std::move(message), [link = core->link, reply = std::move(reply), id = std::move(id),
                                max = core->config.max_reply_bytes](Result<Message> result) {
    PublishReply(*link, reply, std::move(result), id, max);
  });
}

// `msg` stays the I/O thread's (it destroys messages in batches, see nats_link.cc). A batch
// (nats_link.h) from another shardkit process is its items, each answered on its own.
void Deliver(ListenerCore* core, natsMsg* msg, bool local_only) {
  const char* reply_subject = natsMsg_GetReply(msg);
  std::string_view reply = reply_subject != nullptr ? reply_subject : "";
  std::string_view data(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
  if (!IsBatch(data)) {
    DeliverOne(core, data, std::string(reply), local_only);
    return;
  }
  // The batch's reply subject is "<prefix>b<batch>.sk"; item n is answered as "<prefix><n>.sk".
  std::string_view prefix = InboxPrefix(reply);
  std::vector<BatchItem> items;
  Status framing = ParseBatch(data, items);
  if (!framing.ok())
    spdlog::warn("nats {}: {} (from {}): its {} complete items are served, the rest dropped",
                 core->link->url(), framing.message(), reply.empty() ? "?" : reply, items.size());
  for (const BatchItem& item : items) {
    std::string item_reply;
    if (!prefix.empty()) item_reply = fmt::format("{}{}{}", prefix, item.n, kReplyMark);
    DeliverOne(core, item.body, std::move(item_reply), local_only);
  }
}

class NatsListener final : public Listener {
 public:
  explicit NatsListener(std::shared_ptr<ListenerCore> core) : core_(std::move(core)) {}
  ~NatsListener() override {
    StopAccepting();
    Close();
  }

  std::string url() const override { return core_->link->url(); }

  // The subjects for `patterns` (canonical pattern texts).
  Status Subscribe(const std::vector<std::string>& patterns) {
    std::map<std::string, std::string> wanted;  // subject -> queue group ("" = none)
    wanted.emplace(std::string(kNodeSubject), std::string(kQueueGroup));
    for (const std::string& text : patterns) {
      auto pattern = Pattern::Parse(text);
      if (!pattern.ok()) continue;
      bool info = false;
      for (const auto& term : pattern->terms()) info = info || term.name == "info";
      if (info) {
        wanted.emplace(std::string(kInfoSubjects), "");
      } else {
        wanted.emplace(PatternSubject(pattern->key()), std::string(kQueueGroup));
      }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (draining_) return Status::Ok();
    for (auto it = subscriptions_.begin(); it != subscriptions_.end();) {
      if (wanted.count(it->first) == 0) {
        core_->link->RemoveInline(it->second);
        natsSubscription_Unsubscribe(it->second);
        natsSubscription_Destroy(it->second);
        it = subscriptions_.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [subject, queue] : wanted) {
      if (subscriptions_.count(subject) != 0) continue;
      // Synchronous subscriptions drained on the link's I/O thread: each request is parsed,
      // dispatched and (for inline services) answered there, with no hand-off to another thread.
      natsSubscription* sub = nullptr;
      natsStatus s =
          queue.empty()
              ? natsConnection_SubscribeSync(&sub, core_->link->connection(), subject.c_str())
              : natsConnection_QueueSubscribeSync(&sub, core_->link->connection(), subject.c_str(),
                                                  queue.c_str());
      if (s == NATS_OK) s = natsSubscription_SetPendingLimits(sub, 65'536, 256 * 1024 * 1024);
      if (s != NATS_OK) {
        if (sub != nullptr) natsSubscription_Destroy(sub);
        return NatsError(s, fmt::format("{}: cannot subscribe to {}", url(), subject));
      }
      bool local_only = queue.empty();
      core_->link->AddInline(
          sub, [core = core_, local_only](natsMsg* msg) { Deliver(core.get(), msg, local_only); });
      subscriptions_.emplace(subject, sub);
    }
    // The server has the interest before the node says it is ready (on the I/O thread itself
    // this wait could not end: the answer is read there).
    if (!core_->link->OnIoThread()) natsConnection_FlushTimeout(core_->link->connection(), 2'000);
    return Status::Ok();
  }

  void ServedPatternsChanged(const std::vector<std::string>& patterns) override {
    Status status = Subscribe(patterns);
    if (!status.ok()) spdlog::warn("{}", status.ToString());
  }

  void StopAccepting() override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (draining_) return;
    draining_ = true;
    // Drain: no new messages; those already received are still handled.
    for (auto& [subject, sub] : subscriptions_) natsSubscription_Drain(sub);
  }

  void Close() override {
    std::map<std::string, natsSubscription*> subscriptions;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      subscriptions.swap(subscriptions_);
    }
    for (auto& [subject, sub] : subscriptions) {
      // After this no callback runs with core_ (bounded: a wedged handler cannot block a stop).
      if (core_->link->OnIoThread() ||
          natsSubscription_WaitForDrainCompletion(sub, 2'000) != NATS_OK)
        natsSubscription_Unsubscribe(sub);
      core_->link->RemoveInline(sub);
      natsSubscription_Destroy(sub);
    }
  }

  size_t connections() const override { return 0; }

 private:
  std::shared_ptr<ListenerCore> core_;
  std::mutex mutex_;
  std::map<std::string, natsSubscription*> subscriptions_;  // guarded by mutex_
  bool draining_ = false;                                   // guarded by mutex_
};

class NatsClient final : public Handler {
 public:
  NatsClient(std::shared_ptr<NatsLink> link, std::string subject, ClientOptions options,
             int64_t resend_after_ms)
      : link_(std::move(link)),
        subject_(std::move(subject)),
        options_(std::move(options)),
        resend_after_ms_(resend_after_ms),
        key_prefix_(resend_after_ms > 0 ? UniquePrefix() : std::string()) {}

  void Handle(Message message, const Context&, ReplyFn reply) override {
    int64_t budget = CallBudgetMs(message, options_.timeout.count(), NowMs());
    if (budget <= 0) {
      reply(Status::Timeout(fmt::format("deadline passed before '{}' was sent to {}",
                                        message.RoutingString(), link_->url())));
      return;
    }
    // A request that may be sent twice carries an idempotency key (unless its sender gave one),
    // so a store applies a resent write once (docs/cluster.md).
    if (resend_after_ms_ > 0 && message.meta().idempotency_key.empty())
      message.meta().idempotency_key =
          key_prefix_ + std::to_string(next_key_.fetch_add(1, std::memory_order_relaxed));
    NatsLink::RequestOptions request;
    request.budget_ms = budget;
    request.resend_after_ms = resend_after_ms_;
    const std::string* subject = &subject_;
    std::string info_subject;
    if (auto info = message.GetString("info")) {
      info_subject = InfoSubject(*info);
      subject = &info_subject;
      request.expect_reply = false;
    }
    std::string payload;
    AppendJson(message, payload);
    if (payload.size() > options_.max_message_bytes) {
      reply(Status::Invalid(fmt::format("message of {} bytes exceeds the limit of {}",
                                        payload.size(), options_.max_message_bytes),
                            "{\"http_status\":413}"));
      return;
    }
    link_->Request(*subject, std::move(payload), message.meta().id, request, std::move(reply));
  }

 private:
  // "nats.<a NUID, unique to this client>." — idempotency keys are this plus a counter.
  static std::string UniquePrefix() {
    natsInbox* inbox = nullptr;
    if (natsInbox_Create(&inbox) != NATS_OK) return fmt::format("nats.{}.", NowMs());
    std::string name(inbox);  // "_INBOX.<nuid>"
    natsInbox_Destroy(inbox);
    return "nats." + name.substr(name.find('.') + 1) + ".";
  }

  std::shared_ptr<NatsLink> link_;
  const std::string subject_;
  const ClientOptions options_;
  const int64_t resend_after_ms_;
  const std::string key_prefix_;
  std::atomic<uint64_t> next_key_{1};
};

}  // namespace

Result<std::unique_ptr<Listener>> StartNatsListener(const ListenerConfig& config,
                                                    ListenerHooks hooks,
                                                    const std::vector<std::string>& patterns) {
  if (!config.token.empty())
    return Status::Invalid(fmt::format(
        "{}: token: not supported on nats:// listeners (use the NATS server's authorization)",
        config.endpoint.ToString()));
  auto link = NatsLink::Shared(config.endpoint, NatsLink::Use::kServe);
  if (!link.ok()) return link.status();
  auto core = std::make_shared<ListenerCore>(ListenerCore{config, std::move(hooks), *link});
  auto listener = std::make_unique<NatsListener>(std::move(core));
  Status subscribed = listener->Subscribe(patterns);
  if (!subscribed.ok()) return subscribed;
  return std::unique_ptr<Listener>(std::move(listener));
}

Result<std::shared_ptr<Handler>> MakeNatsClient(const Endpoint& endpoint, ClientOptions options,
                                                std::string pattern, int64_t resend_after_ms) {
  auto link = NatsLink::Shared(endpoint, NatsLink::Use::kCall);
  if (!link.ok()) return link.status();
  std::string subject(kNodeSubject);
  if (!pattern.empty()) {
    auto parsed = Pattern::Parse(pattern);
    if (!parsed.ok()) return parsed.status();
    subject = PatternSubject(parsed->key());
  }
  return std::shared_ptr<Handler>(
      std::make_shared<NatsClient>(*link, std::move(subject), std::move(options), resend_after_ms));
}

}  // namespace shardkit::services
