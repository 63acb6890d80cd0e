#include "commands.h"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <spdlog/spdlog.h>

#include "shardkit/message/closest.h"
#include "shardkit/message/codec.h"
#include "shardkit/message/json.h"
#include "shardkit/message/pattern.h"
#include "shardkit/services/client.h"
#include "shardkit/services/config.h"
#include "shardkit/services/node.h"

namespace shardkit::cli {
namespace {

using services::Node;

std::string& ProgramNameStorage() {
  static std::string name = "shardkit";
  return name;
}

int Fail(int code, std::string_view line) {
  fmt::print(stderr, "{}: {}\n", ProgramName(), line);
  return code;
}

// --- serve
// ----------------------------------------------------------------------------------------

struct ServeOptions {
  std::string config;
  std::string ready_file;
  std::string log_level = "info";
};

// Writes the bound URLs, one per line, atomically (tests and scripts wait for this file).
bool WriteReadyFile(const std::string& path, const std::vector<std::string>& urls) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& url : urls) out << url << '\n';
    if (!out) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

int RunServe(const ServeOptions& options) {
  auto level = spdlog::level::from_str(options.log_level);
  spdlog::set_level(level);
  auto config = services::LoadNodeConfig(options.config);
  if (!config.ok()) return Fail(2, config.status().message());
  auto started = Node::Start(std::move(config).value());
  if (!started.ok()) return Fail(2, started.status().message());
  std::unique_ptr<Node> node = std::move(started).value();

  auto stop = std::make_shared<std::promise<int>>();
  auto stopping = std::make_shared<std::atomic<bool>>(false);
  auto request_stop = [stop, stopping](int signal_number) {
    if (!stopping->exchange(true)) stop->set_value(signal_number);
  };
  node->runtime().OnSignal(SIGTERM, [request_stop] { request_stop(SIGTERM); });
  node->runtime().OnSignal(SIGINT, [request_stop] { request_stop(SIGINT); });
  Node* raw = node.get();
  node->runtime().OnSignal(SIGHUP, [raw] {
    Status status = raw->Reload();
    if (status.ok()) {
      spdlog::info("SIGHUP: config reloaded");
    } else {
      spdlog::warn("SIGHUP: reload refused: {}", status.message());
    }
  });

  for (const auto& url : node->listener_urls()) fmt::print("listening {}\n", url);
  std::fflush(stdout);
  if (!options.ready_file.empty() && !WriteReadyFile(options.ready_file, node->listener_urls())) {
    node->Stop(std::chrono::milliseconds(0));
    return Fail(2, fmt::format("cannot write the ready file {}", options.ready_file));
  }
  int signal_number = stop->get_future().get();
  spdlog::info("signal {}: stopping (finishing in-flight requests)", signal_number);
  node->Stop();
  spdlog::info("stopped");
  return 0;
}

// --- act and friends
// ------------------------------------------------------------------------------

struct CallOptions {
  std::string to;
  std::string token;
  int64_t timeout_ms = 5000;
  bool compact = false;
  std::string tls_ca, tls_cert, tls_key;  // tls:// and https:// only
};

// The pattern notation as a message: `store:load,kind:entry,id:42` ->
// {"store":"load","kind":"entry","id":42}.
Result<Message> MessageFromNotation(std::string_view text) {
  auto pattern = Pattern::Parse(text);
  if (!pattern.ok()) return pattern.status();
  Message message;
  for (const auto& term : pattern->terms()) {
    // Numbers and booleans keep their type, as they would in JSON.
    auto typed = ParseMessage(fmt::format("{{\"v\":{}}}", term.value));
    if (typed.ok() && typed->size() == 1 && typed->properties()[0].value.is_routable()) {
      message.Set(term.name, typed->properties()[0].value);
    } else {
      message.SetString(term.name, term.value);
    }
  }
  return message;
}

Result<Message> ReadMessage(std::string text) {
  if (text.empty() || text == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos)
    return Status::Invalid("no message given (an argument or JSON on stdin)");
  if (text[first] == '{') return ParseMessage(text);
  return MessageFromNotation(text);
}

void PrintJson(const std::string& json, bool compact) {
  if (compact || !isatty(STDOUT_FILENO)) {
    fmt::print("{}\n", json);
    return;
  }
  auto document = ParseJson(json, "reply");
  if (!document.ok()) {
    fmt::print("{}\n", json);
    return;
  }
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
  writer.SetIndent(' ', 2);
  document->Accept(writer);
  fmt::print("{}\n", WrittenJson(buffer));
}

// For a `no handler` reply: the node's routed patterns closest to the message (from its routing
// table) and the command that explains the routing.
std::string NoRouteHint(Handler& client, const Message& message, const CallOptions& options) {
  std::string hint;
  Message list;
  list.SetString("sys", "config").SetString("cmd", "routes");
  auto routes = services::CallAndWait(client, std::move(list));
  auto parsed =
      ParseJson(routes.ok() ? routes->GetArrayJson("routes").value_or("[]") : "[]", "routes");
  std::vector<Pattern> patterns;
  if (parsed.ok() && parsed->IsArray()) {
    for (const auto& route : parsed->GetArray()) {
      if (!route.IsObject() || !route.HasMember("pattern") || !route["pattern"].IsString())
        continue;
      auto pattern = Pattern::Parse(route["pattern"].GetString());
      if (pattern.ok()) patterns.push_back(std::move(pattern).value());
    }
  }
  auto near = ClosestPatterns(patterns, message, 3);
  if (!near.empty()) {
    hint += "closest patterns routed on the node:\n" + FormatNearPatterns(near, "  ") + "\n";
  }
  return hint + fmt::format("how the node routes it: {} explain '{}' --to {}", ProgramName(),
                            message.RoutingString(), options.to);
}

int Call(Message message, const CallOptions& options) {
  auto endpoint = services::ParseEndpoint(options.to);
  if (!endpoint.ok()) return Fail(2, endpoint.status().message());
  if (endpoint->scheme == services::Scheme::kInproc)
    return Fail(2, "inproc:// endpoints exist only inside a process");
  services::IoRuntime runtime(1);
  Result<Message> reply = Status::Internal("unset");
  std::string hint;
  {
    services::ClientOptions client_options;
    client_options.timeout = std::chrono::milliseconds(options.timeout_ms);
    client_options.token = options.token;
    client_options.tls_ca_file = options.tls_ca;
    client_options.tls_cert_file = options.tls_cert;
    client_options.tls_key_file = options.tls_key;
    client_options.connections = 1;
    auto client = services::MakeClient(runtime, *endpoint, client_options);
    if (!client.ok()) return Fail(2, client.status().message());
    reply = services::CallAndWait(**client, message);
    if (!reply.ok() && reply.status().code() == Code::kNoRoute) {
      hint = NoRouteHint(**client, message, options);
    }
  }
  if (reply.ok()) {
    reply->meta() = Meta{};
    PrintJson(ToJson(*reply), options.compact);
    return 0;
  }
  PrintJson(ToJson(ErrorMessage(reply.status())), options.compact);
  int code = Fail(reply.status().code() == Code::kUnavailable ? 2 : 1, reply.status().ToString());
  if (!hint.empty()) fmt::print(stderr, "{}\n", hint);
  return code;
}

void AddCallOptions(CLI::App* command, CallOptions& options) {
  command->add_option("--to", options.to, kToHelp)->required();
  command->add_option("--token", options.token, "Bearer token of the listener");
  command->add_option("--timeout-ms", options.timeout_ms, "How long to wait for the reply")
      ->check(Positive())
      ->capture_default_str();
  command->add_flag("--compact", options.compact, "Compact JSON even on a terminal");
  command->add_option("--tls-ca", options.tls_ca,
                      "tls:// and https://: CAs (PEM) trusted for the node's certificate "
                      "(default: the system's)");
  command->add_option("--tls-cert", options.tls_cert,
                      "tls:// and https://: a client certificate (PEM), for mutual TLS");
  command->add_option("--tls-key", options.tls_key, "The key of --tls-cert (PEM)");
}

}  // namespace

CLI::Validator Positive() {
  return CLI::Validator(
      [](std::string& input) -> std::string {
        double value = 0;
        size_t used = 0;
        try {
          value = std::stod(input, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == input.size() && used > 0 && value > 0) return {};
        return input + " is not a number greater than 0";
      },
      "> 0");
}

void SetProgramName(std::string name) { ProgramNameStorage() = std::move(name); }
const std::string& ProgramName() { return ProgramNameStorage(); }

void AddNodeCommands(CLI::App& app, int& exit_code) {
  auto serve_options = std::make_shared<ServeOptions>();
  auto call_options = std::make_shared<CallOptions>();
  auto message_text = std::make_shared<std::string>();

  auto* serve =
      app.add_subcommand("serve", "Run a node from a TOML config (SIGHUP reloads, SIGTERM stops)");
  serve->add_option("--config", serve_options->config, "The node's TOML config")
      ->required()
      ->check(CLI::ExistingFile);
  serve->add_option("--ready-file", serve_options->ready_file,
                    "Write the bound listener URLs here, one per line, once serving");
  serve->add_option("--log-level", serve_options->log_level, "How much the node logs")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  serve->callback([serve_options, &exit_code] { exit_code = RunServe(*serve_options); });

  auto* act = app.add_subcommand("act", "Send one message to a node and print the reply");
  act->add_option("message", *message_text,
                  "The message: pattern notation (store:load,kind:entry,id:42) or JSON; '-' or "
                  "none reads stdin");
  AddCallOptions(act, *call_options);
  auto idempotency_key = std::make_shared<std::string>();
  act->add_option("--idempotency-key", *idempotency_key,
                  "Sets meta$.idempotency_key: a store applies the write once and answers a repeat "
                  "of this command (same key, same message) with the first reply (docs/store.md)");
  act->callback([message_text, call_options, idempotency_key, &exit_code] {
    auto message = ReadMessage(*message_text);
    if (!message.ok()) {
      exit_code = Fail(2, message.status().message());
      return;
    }
    if (!idempotency_key->empty()) message->meta().idempotency_key = *idempotency_key;
    exit_code = Call(std::move(message).value(), *call_options);
  });

  auto* explain = app.add_subcommand("explain", "Show where a node would route a message, and why");
  explain->add_option("message", *message_text,
                      "The message (notation or JSON; '-' or none reads stdin)");
  AddCallOptions(explain, *call_options);
  explain->callback([message_text, call_options, &exit_code] {
    auto message = ReadMessage(*message_text);
    if (!message.ok()) {
      exit_code = Fail(2, message.status().message());
      return;
    }
    Message request;
    request.SetString("sys", "config")
        .SetString("cmd", "explain")
        .SetObjectJson("msg", ToJson(*message));
    exit_code = Call(std::move(request), *call_options);
  });

  struct System {
    const char* name;
    const char* help;
    const char* message;
  };
  static const System kSystem[] = {
      {"routes", "Print a node's routing table", R"({"sys":"config","cmd":"routes"})"},
      {"stats", "Print a node's metrics", R"({"sys":"stats"})"},
      {"reload", "Make a node reread its config file", R"({"sys":"config","cmd":"reload"})"},
  };
  for (const System& system : kSystem) {
    auto* command = app.add_subcommand(system.name, system.help);
    AddCallOptions(command, *call_options);
    command->callback([system, call_options, &exit_code] {
      exit_code = Call(std::move(ParseMessage(system.message)).value(), *call_options);
    });
  }
}

}  // namespace shardkit::cli
