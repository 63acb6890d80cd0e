#include "console.h"

#include <atomic>
#include <cctype>
#include <chrono>

#include <fmt/format.h>

#include "shardkit/message/codec.h"
#include "shardkit/message/json.h"
#include "shardkit/message/pattern.h"

namespace shardkit::services {
namespace {

// The deadline of each query of /console/state: a client hop to another node answers `timeout`
// past it (shown in its place). A handler in this process that is slow to answer (the migrator
// inside a long verify) holds the whole state; the listener answers 504 past its
// request_timeout_ms.
constexpr int64_t kQueryTimeoutMs = 2'000;

const std::vector<std::pair<std::string, std::string>>& SecurityHeaders() {
  static const std::vector<std::pair<std::string, std::string>> headers = {
      {"Content-Security-Policy",
       "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'none'"},
      {"X-Content-Type-Options", "nosniff"},
      {"Referrer-Policy", "no-referrer"},
      {"Cache-Control", "no-store"}};
  return headers;
}

PageResponse Json(int status, std::string body) {
  return PageResponse{status, "application/json", std::move(body), SecurityHeaders()};
}

PageResponse Error(const Status& status) {
  return Json(HttpStatusFor(status), ToJson(ErrorMessage(status)));
}

// The value of `name` in a query string, percent-decoded ('+' is a space); nullopt if absent.
std::optional<std::string> QueryValue(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = item.find('=');
    if (item.substr(0, eq) != name) continue;
    std::string_view raw = eq == std::string_view::npos ? "" : item.substr(eq + 1);
    std::string out;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '+') {
        out += ' ';
      } else if (raw[i] == '%' && i + 2 < raw.size() &&
                 std::isxdigit(static_cast<unsigned char>(raw[i + 1])) &&
                 std::isxdigit(static_cast<unsigned char>(raw[i + 2]))) {
        out += static_cast<char>(std::stoi(std::string(raw.substr(i + 1, 2)), nullptr, 16));
        i += 2;
      } else {
        out += raw[i];
      }
    }
    return out;
  }
  return std::nullopt;
}

// The message to explain: a JSON object, or a pattern's terms as its properties.
Result<std::string> MessageToExplain(const std::string& text) {
  if (!text.empty() && text.front() == '{') {
    auto parsed = ParseMessage(text);
    if (!parsed.ok()) return Status::InvalidField("msg", parsed.status().message());
    return ToJson(*parsed);
  }
  auto pattern = Pattern::Parse(text);
  if (!pattern.ok()) return Status::InvalidField("msg", pattern.status().message());
  JsonObject object;
  for (const auto& term : pattern->terms()) object.Add(term.name, term.value);
  return object.str();
}

// Sends a query message (JSON text) on the bus with a deadline; `done` gets the reply.
void Ask(Bus& bus, const std::string& json, ReplyFn done) {
  auto message = ParseMessage(json);
  if (!message.ok()) return done(message.status());
  message->meta().deadline = NowMs() + kQueryTimeoutMs;
  bus.Act(std::move(message).value(), std::move(done));
}

// Ask, with the reply or the error object as JSON text.
void Query(Bus& bus, const std::string& json, std::function<void(std::string)> done) {
  Ask(bus, json, [done = std::move(done)](Result<Message> result) {
    if (!result.ok()) return done(ToJson(ErrorMessage(result.status())));
    result->meta() = Meta{};
    done(ToJson(*result));
  });
}

// The replies of several queries, written into one object when the last has arrived.
class Gather : public std::enable_shared_from_this<Gather> {
 public:
  explicit Gather(std::function<void(std::string)> done) : done_(std::move(done)) {}
  // A member of the object (in `section` unless it is empty) and the function that fills it.
  std::function<void(std::string)> Slot(std::string section, std::string name) {
    size_t i;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      i = replies_.size();
      replies_.push_back({std::move(section), std::move(name), "null"});
    }
    remaining_.fetch_add(1);
    return [self = shared_from_this(), i](std::string json) { self->Fill(i, std::move(json)); };
  }
  // After the last Slot: the object is written when every slot is filled.
  void Finish() { Release(); }

 private:
  struct Reply {
    std::string section, name, json;
  };
  void Fill(size_t i, std::string json) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      replies_[i].json = std::move(json);
    }
    Release();
  }
  void Release() {
    if (remaining_.fetch_sub(1) != 1) return;
    std::lock_guard<std::mutex> lock(mutex_);
    std::map<std::string, JsonObject> sections;
    JsonObject out;
    for (const auto& reply : replies_) {
      if (reply.section.empty()) {
        out.AddRaw(reply.name, reply.json);
      } else {
        sections[reply.section].AddRaw(reply.name, reply.json);
      }
    }
    for (const auto& [section, object] : sections) out.Add(section, object);
    done_(out.str());
  }

  std::function<void(std::string)> done_;
  std::atomic<size_t> remaining_{1};  // the slots not filled, plus one until Finish
  std::mutex mutex_;
  std::vector<Reply> replies_;  // guarded by mutex_
};

}  // namespace

Console::Console(ConsoleSources sources) : sources_(std::move(sources)) {}

void Console::Serve(PageRequest request, const ListenerConfig& listener,
                    std::function<void(PageResponse)> respond) {
  if (request.path == "/console/state") return State(std::move(respond));
  if (request.path == "/console/explain") return Explain(request.query, std::move(respond));
  for (size_t i = 0; i < kConsoleAssetCount; ++i) {
    const ConsoleAsset& asset = kConsoleAssets[i];
    if (request.path != asset.path) continue;
    return respond(PageResponse{200, asset.content_type,
                                std::string(reinterpret_cast<const char*>(asset.data), asset.size),
                                SecurityHeaders()});
  }
  respond(Error(Status::NotFound(fmt::format(
      "no resource '{}' (/console, /console/state, /console/explain?msg=…)", request.path))));
}

void Console::State(std::function<void(PageResponse)> respond) {
  auto gather = std::make_shared<Gather>(
      [respond = std::move(respond)](std::string json) { respond(Json(200, std::move(json))); });
  std::string node;
  AppendJsonString(sources_.node, node);
  gather->Slot("", "node")(node);
  gather->Slot("", "at_ms")(std::to_string(NowMs()));
  gather->Slot("", "history")(HistoryJson());
  std::string cluster = sources_.cluster_json ? sources_.cluster_json() : "";
  gather->Slot("", "cluster")(cluster.empty() ? "null" : cluster);
  Bus& bus = *sources_.bus;
  Query(bus, R"({"sys":"stats"})", gather->Slot("", "stats"));
  Query(bus, R"({"sys":"config","cmd":"routes"})", gather->Slot("", "routes"));
  auto services = sources_.services ? sources_.services() : std::nullopt;
  std::string list = "[";
  for (const ConsoleService& service : services.value_or(std::vector<ConsoleService>{})) {
    if (list.size() > 1) list += ',';
    JsonObject shown;
    shown.Add("name", service.name)
        .Add("type", service.type)
        .Add("backend", service.backend)
        .Add("shard", service.shard);
    if (service.bytes >= 0) shown.Add("bytes", service.bytes);
    list += shown.str();
    const std::string& type = service.type;
    if (type == "shard-map") {
      Query(bus, JsonObject().Add("shardmap", "get").Add("map", service.map).str(),
            gather->Slot("maps", service.map));
    } else if (type == "cache") {
      Query(bus,
            JsonObject().Add("sys", "cache").Add("cmd", "stats").Add("name", service.name).str(),
            gather->Slot("caches", service.name));
    } else if (type == "migrator") {
      Query(bus, R"({"migrate":"list"})", gather->Slot("migrations", service.name));
    } else if (type == "command-log" || type == "projection") {
      Query(bus, JsonObject().Add("cqrs", "status").Add("service", service.name).str(),
            gather->Slot("projections", service.name));
    }
  }
  gather->Slot("", "services")(services ? list + "]" : "null");
  gather->Finish();
}

void Console::Explain(const std::string& query, std::function<void(PageResponse)> respond) {
  auto text = QueryValue(query, "msg");
  if (!text || text->empty())
    return respond(Error(Status::InvalidField("msg", "a pattern or a JSON object is required")));
  auto message = MessageToExplain(*text);
  if (!message.ok()) return respond(Error(message.status()));
  std::string request =
      JsonObject().Add("sys", "config").Add("cmd", "explain").AddRaw("msg", *message).str();
  Ask(*sources_.bus, request, [respond = std::move(respond)](Result<Message> result) {
    if (!result.ok()) return respond(Error(result.status()));
    result->meta() = Meta{};
    respond(Json(200, ToJson(*result)));
  });
}

void Console::Observe(const Message& event) {
  auto id = event.GetString("id");
  auto phase = event.GetString("phase");
  if (!id || !phase) return;
  int64_t now = NowMs();
  std::lock_guard<std::mutex> lock(mutex_);
  auto& changes = history_[std::string(*id)];
  if (!changes.empty() && changes.back().phase == *phase) return;  // copy progress, same phase
  changes.push_back({std::string(*phase), now});
  if (changes.size() > kHistory) changes.pop_front();
}

std::string Console::HistoryJson() const {
  std::lock_guard<std::mutex> lock(mutex_);
  JsonObject out;
  for (const auto& [id, changes] : history_) {
    std::string list = "[";
    for (const PhaseChange& change : changes) {
      if (list.size() > 1) list += ',';
      list += JsonObject().Add("phase", change.phase).Add("at_ms", change.at_ms).str();
    }
    out.AddRaw(id, list + "]");
  }
  return out.str();
}

}  // namespace shardkit::services
