// The in-process transport: inproc://name reaches the node listening on that name in this process,
// with the same admission, deadline and reply rules as the network transports but no bytes.
#include <future>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "wire.h"

namespace shardkit::services {
namespace {

struct InprocTarget {
  ListenerConfig config;
  ListenerHooks hooks;
};

struct InprocRegistry {
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<const InprocTarget>> targets;  // guarded by mutex

  static InprocRegistry& Get() {
    static auto* registry = new InprocRegistry();  // never destroyed: used until exit
    return *registry;
  }
  std::shared_ptr<const InprocTarget> Find(const std::string& name) {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = targets.find(name);
    return it == targets.end() ? nullptr : it->second;
  }
};

class InprocListener final : public Listener {
 public:
  InprocListener(std::string name, std::shared_ptr<const InprocTarget> target)
      : name_(std::move(name)), target_(std::move(target)) {}
  ~InprocListener() override { StopAccepting(); }
  std::string url() const override { return "inproc://" + name_; }
  void StopAccepting() override {
    auto& registry = InprocRegistry::Get();
    std::lock_guard<std::mutex> lock(registry.mutex);
    auto it = registry.targets.find(name_);
    if (it != registry.targets.end() && it->second == target_) registry.targets.erase(it);
  }
  void Close() override {}
  size_t connections() const override { return 0; }

 private:
  std::string name_;
  std::shared_ptr<const InprocTarget> target_;
};

class InprocClient final : public Handler {
 public:
  InprocClient(IoRuntime& runtime, Endpoint endpoint, ClientOptions options)
      : runtime_(runtime), endpoint_(std::move(endpoint)), options_(std::move(options)) {}

  void Handle(Message message, const Context&, ReplyFn reply) override {
    int64_t now = NowMs();
    int64_t budget = CallBudgetMs(message, options_.timeout.count(), now);
    std::string url = endpoint_.ToString();
    if (budget <= 0) {
      reply(Status::Timeout(
          fmt::format("deadline passed before '{}' was sent to {}", message.RoutingString(), url)));
      return;
    }
    // The same size limit as the network transports, on a lower bound of the JSON size.
    size_t bytes = 2;
    for (const Property& p : message.properties()) bytes += p.name.size() + p.value.text.size() + 4;
    if (bytes > options_.max_message_bytes) {
      reply(Status::Invalid(fmt::format("message of at least {} bytes exceeds the limit of {}",
                                        bytes, options_.max_message_bytes),
                            "{\"http_status\":413}"));
      return;
    }
    auto target = InprocRegistry::Get().Find(endpoint_.name);
    if (!target) {
      reply(Status::Unavailable(fmt::format("cannot connect to {}: no node listens there", url)));
      return;
    }
    std::string original_id = message.meta().id;
    auto once = std::make_shared<ReplyOnce>(std::move(reply));
    runtime_.PostAfter(std::chrono::milliseconds(budget), [once, url] {
      once->Reply(Status::Timeout(fmt::format("no reply from {} in time", url)));
    });
    Status admitted =
        AdmitIncoming(message, target->config, target->hooks, AnonymousCaller(target->config), now);
    if (!admitted.ok()) {
      once->Reply(std::move(admitted));
      return;
    }
    target->hooks.dispatch(std::move(message), [once, original_id](Result<Message> result) {
      if (result.ok()) {
        result->meta() = Meta{};
        result->meta().id = original_id;
      }
      once->Reply(std::move(result));
    });
  }

 private:
  IoRuntime& runtime_;
  const Endpoint endpoint_;
  const ClientOptions options_;
};

}  // namespace

Result<std::unique_ptr<Listener>> StartInprocListener(IoRuntime&, const ListenerConfig& config,
                                                      ListenerHooks hooks) {
  auto target = std::make_shared<const InprocTarget>(InprocTarget{config, std::move(hooks)});
  auto& registry = InprocRegistry::Get();
  std::lock_guard<std::mutex> lock(registry.mutex);
  auto [it, inserted] = registry.targets.emplace(config.endpoint.name, target);
  if (!inserted)
    return Status::Unavailable(
        fmt::format("cannot listen on {}: already taken", config.endpoint.ToString()));
  return std::unique_ptr<Listener>(
      std::make_unique<InprocListener>(config.endpoint.name, std::move(target)));
}

std::shared_ptr<Handler> MakeInprocClient(IoRuntime& runtime, const Endpoint& endpoint,
                                          ClientOptions options) {
  return std::make_shared<InprocClient>(runtime, endpoint, std::move(options));
}

Result<std::shared_ptr<Handler>> MakeClient(IoRuntime& runtime, const Endpoint& endpoint,
                                            ClientOptions options) {
  switch (endpoint.scheme) {
    case Scheme::kTcp:
      return MakeTcpClient(runtime, endpoint, std::move(options));
    case Scheme::kHttp:
      return MakeHttpClient(runtime, endpoint, std::move(options));
    case Scheme::kInproc:
      return MakeInprocClient(runtime, endpoint, std::move(options));
    case Scheme::kNats:
      return MakeNatsClient(endpoint, std::move(options));
  }
  return Status::Invalid("unknown scheme");
}

Result<Message> CallAndWait(Handler& client, Message message) {
  auto done = std::make_shared<std::promise<Result<Message>>>();
  auto future = done->get_future();
  Context context(nullptr, nullptr, message.meta());
  client.Handle(std::move(message), context,
                [done](Result<Message> result) { done->set_value(std::move(result)); });
  return future.get();  // every client call has a timeout, so this returns
}

}  // namespace shardkit::services
