#include "shardkit/services/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "settings_data.h"

#include "shardkit/message/pattern.h"

namespace shardkit::services {

namespace {

#define SK_TRY(expr)                         \
  do {                                       \
    Status sk_status_ = (expr);              \
    if (!sk_status_.ok()) return sk_status_; \
  } while (0)

// Reads typed keys of one table, naming "<file>: <path>.<key>" in every error.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string prefix)
      : table_(table), prefix_(std::move(prefix)) {}

  const toml::table& table() const { return table_; }
  Status Error(std::string_view key, std::string_view problem) const {
    return Status::Invalid(fmt::format("{}.{}: {}", prefix_, key, problem));
  }
  Status CheckOnly(std::initializer_list<std::string_view> known) const {
    for (const auto& [key, value] : table_) {
      bool ok = false;
      for (std::string_view k : known) ok = ok || k == key.str();
      if (!ok) return Error(key.str(), "unknown key");
    }
    return Status::Ok();
  }
  Status String(std::string_view key, std::string& out, bool required = false) const {
    const toml::node* node = table_.get(key);
    if (node == nullptr)
      return required ? Error(key, "missing (a string is required)") : Status::Ok();
    if (!node->is_string()) return Error(key, "must be a string");
    out = node->as_string()->get();
    return Status::Ok();
  }
  Status Int(std::string_view key, int64_t& out, int64_t min, int64_t max) const {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return Status::Ok();
    if (!node->is_integer()) return Error(key, "must be an integer");
    int64_t value = node->as_integer()->get();
    if (value < min || value > max)
      return Error(key, fmt::format("must be from {} to {}, not {}", min, max, value));
    out = value;
    return Status::Ok();
  }
  Status Bool(std::string_view key, bool& out) const {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return Status::Ok();
    if (!node->is_boolean()) return Error(key, "must be true or false");
    out = node->as_boolean()->get();
    return Status::Ok();
  }
  // `what` names the items in the error: "must be an array of <what>".
  Status Strings(std::string_view key, std::vector<std::string>& out,
                 std::string_view what = "strings") const {
    const toml::node* node = table_.get(key);
    if (node == nullptr) return Status::Ok();
    const toml::array* array = node->as_array();
    bool all_strings = array != nullptr;
    for (size_t i = 0; all_strings && i < array->size(); ++i)
      all_strings = array->get(i)->is_string();
    if (!all_strings) return Error(key, fmt::format("must be an array of {}", what));
    for (const toml::node& item : *array) out.push_back(item.as_string()->get());
    return Status::Ok();
  }
  bool Has(std::string_view key) const { return table_.get(key) != nullptr; }
  Status Patterns(std::string_view key, std::vector<std::string>& out) const {
    std::vector<std::string> texts;
    SK_TRY(Strings(key, texts, "patterns (strings)"));
    for (std::string& text : texts) {
      auto parsed = Pattern::Parse(text);
      if (!parsed.ok()) return Error(key, parsed.status().message());
      out.push_back(std::move(text));
    }
    return Status::Ok();
  }

 private:
  const toml::table& table_;
  std::string prefix_;
};

// Reads each [[name]] entry with `read(reader)`, the reader's errors prefixed
// "<source>: <name>[<i>]"; `invalid` if `name` is not an array of tables.
template <typename Read>
Status ForEachTable(const toml::table& root, std::string_view name, const std::string& source,
                    Read read) {
  const toml::node* node = root.get(name);
  if (node == nullptr) return Status::Ok();
  const toml::array* array = node->as_array();
  if (array == nullptr || !array->is_array_of_tables()) {
    return Status::Invalid(
        fmt::format("{}: {}: must be an array of tables ([[{}]])", source, name, name));
  }
  for (size_t i = 0; i < array->size(); ++i) {
    TableReader r(*array->get(i)->as_table(), fmt::format("{}: {}[{}]", source, name, i));
    SK_TRY(read(r));
  }
  return Status::Ok();
}

Status ReadNode(const toml::table& root, const std::string& source, NodeConfig& config) {
  const toml::node* node = root.get("node");
  if (node == nullptr) return Status::Ok();
  if (!node->is_table())
    return Status::Invalid(fmt::format("{}: node: must be a table ([node])", source));
  TableReader r(*node->as_table(), source + ": node");
  SK_TRY(r.CheckOnly(
      {"name", "threads", "request_timeout_ms", "stop_grace_ms", "audit_log", "max_reply_bytes"}));
  SK_TRY(r.String("name", config.name));
  SK_TRY(r.String("audit_log", config.audit_log));
  int64_t threads = config.threads;
  SK_TRY(r.Int("threads", threads, 1, 64));
  config.threads = static_cast<int>(threads);
  SK_TRY(r.Int("request_timeout_ms", config.request_timeout_ms, 1, 3'600'000));
  SK_TRY(r.Int("stop_grace_ms", config.stop_grace_ms, 0, 3'600'000));
  int64_t max_reply_bytes = static_cast<int64_t>(config.max_reply_bytes);
  SK_TRY(r.Int("max_reply_bytes", max_reply_bytes, 65'536, 1LL << 30));
  config.max_reply_bytes = static_cast<size_t>(max_reply_bytes);
  return Status::Ok();
}

Status BucketName(const TableReader& r, std::string_view key, const std::string& name) {
  if (name.empty()) return r.Error(key, "must not be empty");
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-')
      return r.Error(key, fmt::format("'{}': only letters, digits, '_' and '-'", name));
  }
  return Status::Ok();
}

Status ReadCluster(const toml::table& root, const std::string& source, NodeConfig& config) {
  const toml::node* node = root.get("cluster");
  if (node == nullptr) return Status::Ok();
  if (!node->is_table())
    return Status::Invalid(fmt::format(
        "{}: cluster: must be a table ([cluster] or cluster = {{ nats = \"...\" }})", source));
  TableReader r(*node->as_table(), source + ": cluster");
  ClusterConfig& cluster = config.cluster;
  SK_TRY(r.CheckOnly({"nats", "registry_bucket", "maps_bucket", "ttl_ms", "timeout_ms",
                      "resend_after_ms", "tls_ca_file", "tls_cert_file", "tls_key_file",
                      "creds_file", "nkey", "nkey_seed_file"}));
  SK_TRY(r.String("nats", cluster.nats, true));
  auto endpoint = ParseEndpoint(cluster.nats);
  if (!endpoint.ok()) return r.Error("nats", endpoint.status().message());
  if (endpoint->scheme != Scheme::kNats || endpoint->port == 0)
    return r.Error("nats", fmt::format("'{}': must be nats://host:port", Shown(cluster.nats)));
  SK_TRY(r.String("registry_bucket", cluster.registry_bucket));
  SK_TRY(BucketName(r, "registry_bucket", cluster.registry_bucket));
  SK_TRY(r.String("maps_bucket", cluster.maps_bucket));
  SK_TRY(BucketName(r, "maps_bucket", cluster.maps_bucket));
  SK_TRY(r.Int("ttl_ms", cluster.ttl_ms, 1'000, 3'600'000));
  SK_TRY(r.Int("timeout_ms", cluster.timeout_ms, 1, 3'600'000));
  SK_TRY(r.Int("resend_after_ms", cluster.resend_after_ms, 0, 3'600'000));
  NatsAuthFiles& files = cluster.files;
  SK_TRY(r.String("tls_ca_file", files.tls_ca_file));
  SK_TRY(r.String("tls_cert_file", files.tls_cert_file));
  SK_TRY(r.String("tls_key_file", files.tls_key_file));
  SK_TRY(r.String("creds_file", files.creds_file));
  SK_TRY(r.String("nkey", files.nkey));
  SK_TRY(r.String("nkey_seed_file", files.nkey_seed_file));
  if (files.tls_cert_file.empty() != files.tls_key_file.empty())
    return r.Error("tls_cert_file", "tls_cert_file and tls_key_file go together");
  if (files.nkey.empty() != files.nkey_seed_file.empty())
    return r.Error("nkey", "nkey and nkey_seed_file go together");
  if (!files.creds_file.empty() && !files.nkey.empty())
    return r.Error("nkey", "give creds_file or nkey, not both");
  if (!endpoint->credentials.empty() && (!files.creds_file.empty() || !files.nkey.empty()))
    return r.Error("nats", "credentials in the URL and a creds_file or nkey: give one");
  return Status::Ok();
}

Status ReadTokens(const toml::table& root, const std::string& source, NodeConfig& config) {
  return ForEachTable(root, "token", source, [&](const TableReader& r) {
    SK_TRY(r.CheckOnly({"name", "secret", "role"}));
    TokenConfig token;
    SK_TRY(r.String("name", token.name, true));
    SK_TRY(r.String("secret", token.secret, true));
    std::string role;
    SK_TRY(r.String("role", role, true));
    if (token.name.empty()) return r.Error("name", "must not be empty");
    for (const TokenConfig& other : config.tokens) {
      if (other.name == token.name)
        return r.Error("name", fmt::format("'{}' is used twice", Shown(token.name)));
      if (other.secret == token.secret)
        return r.Error("secret", fmt::format("the same as token '{}'", Shown(other.name)));
    }
    if (token.secret.size() < 16) return r.Error("secret", "must be at least 16 characters");
    if (role == "client") {
      token.role = Role::kClient;
    } else if (role == "admin") {
      token.role = Role::kAdmin;
    } else {
      return r.Error("role", fmt::format("'{}': must be client or admin", Shown(role)));
    }
    config.tokens.push_back(std::move(token));
    return Status::Ok();
  });
}

bool IsLoopback(const std::string& host) {
  unsigned char bytes[16];
  if (inet_pton(AF_INET, host.c_str(), bytes) == 1) return bytes[0] == 127;
  return host == "::1";
}

// The listener's tokens, allow list and the refusal of an open external listener.
Status ReadAccess(const TableReader& r, const NodeConfig& config, ListenerConfig& listener) {
  SK_TRY(r.Bool("external", listener.external));
  SK_TRY(r.String("token", listener.token));
  SK_TRY(r.Bool("insecure", listener.insecure));
  SK_TRY(r.Patterns("allow", listener.allow));
  if (r.Has("allow") && listener.allow.empty())
    return r.Error("allow", "must list at least one pattern (omit it to serve every pattern)");
  std::vector<std::string> names;
  SK_TRY(r.Strings("tokens", names));
  if (r.Has("tokens") && names.empty())
    return r.Error("tokens", "must name at least one [[token]] (omit it to accept every one)");
  Scheme scheme = listener.endpoint.scheme;
  bool bearer = scheme == Scheme::kTcp || scheme == Scheme::kHttp;
  if (!bearer && r.Has("tokens"))
    return r.Error("tokens", "only tcp:// and http:// listeners take bearer tokens");
  if (!r.Has("tokens") && bearer) listener.tokens = config.tokens;
  for (const std::string& name : names) {
    auto it = std::find_if(config.tokens.begin(), config.tokens.end(),
                           [&](const TokenConfig& t) { return t.name == name; });
    if (it == config.tokens.end())
      return r.Error("tokens", fmt::format("no [[token]] named '{}'", Shown(name)));
    listener.tokens.push_back(*it);
  }
  bool open = listener.token.empty() && listener.tokens.empty();
  bool exposed =
      listener.external && !listener.insecure && bearer && !IsLoopback(listener.endpoint.host);
  if (exposed && open) {
    return r.Error("url", fmt::format("an external listener on {} without a token serves anyone "
                                      "who reaches it: give it a token, or set insecure = true",
                                      listener.endpoint.host));
  }
  if (exposed && !listener.endpoint.tls) {
    return r.Error("url", fmt::format("an external listener on {} without TLS sends its tokens and "
                                      "data in plain text: use tls:// or https:// with "
                                      "tls_cert_file and tls_key_file, or set insecure = true",
                                      listener.endpoint.host));
  }
  return Status::Ok();
}

// tls_cert_file and tls_key_file: required on tls:// and https://, refused elsewhere.
Status ReadListenerTls(const TableReader& r, ListenerConfig& listener) {
  SK_TRY(r.String("tls_cert_file", listener.tls_cert_file));
  SK_TRY(r.String("tls_key_file", listener.tls_key_file));
  SK_TRY(r.String("tls_client_ca_file", listener.tls_client_ca_file));
  for (const char* key : {"tls_cert_file", "tls_key_file", "tls_client_ca_file"}) {
    if (!listener.endpoint.tls && r.Has(key))
      return r.Error(key, "only tls:// and https:// listeners take TLS files");
  }
  if (!listener.endpoint.tls) return Status::Ok();
  if (listener.tls_cert_file.empty())
    return r.Error("tls_cert_file", "a tls:// or https:// listener needs its certificate (PEM)");
  if (listener.tls_key_file.empty())
    return r.Error("tls_key_file", "a tls:// or https:// listener needs its private key (PEM)");
  return Status::Ok();
}

Status ReadListeners(const toml::table& root, const std::string& source, NodeConfig& config) {
  return ForEachTable(root, "listener", source, [&](const TableReader& r) {
    SK_TRY(
        r.CheckOnly({"url", "external", "token", "tokens", "allow", "insecure", "max_message_bytes",
                     "read_timeout_ms", "max_connections", "max_connections_per_peer",
                     "idle_timeout_ms", "write_timeout_ms", "max_in_flight_per_connection",
                     "console", "tls_cert_file", "tls_key_file", "tls_client_ca_file"}));
    ListenerConfig listener;
    std::string url;
    SK_TRY(r.String("url", url, true));
    auto endpoint = ParseEndpoint(url);
    if (!endpoint.ok()) return r.Error("url", endpoint.status().message());
    listener.endpoint = *endpoint;
    SK_TRY(ReadListenerTls(r, listener));
    SK_TRY(ReadAccess(r, config, listener));
    listener.console = !listener.external;  // the web console: on unless the listener is external
    SK_TRY(r.Bool("console", listener.console));
    if (listener.console && listener.endpoint.scheme != Scheme::kHttp &&
        r.table().contains("console"))
      return r.Error("console", "only an http:// listener serves the web console");
    int64_t max_bytes = static_cast<int64_t>(listener.max_message_bytes);
    SK_TRY(r.Int("max_message_bytes", max_bytes, 64, 256LL * 1024 * 1024));
    listener.max_message_bytes = static_cast<size_t>(max_bytes);
    // A write's reply (its entities, with their versions) must always fit in a reply.
    if (listener.max_message_bytes * 2 > config.max_reply_bytes) {
      return r.Error("max_message_bytes",
                     fmt::format("must be at most half of [node] max_reply_bytes ({}), so the "
                                 "reply to any write fits",
                                 config.max_reply_bytes));
    }
    SK_TRY(r.Int("read_timeout_ms", listener.read_timeout_ms, 1, 3'600'000));
    SK_TRY(r.Int("max_connections", listener.max_connections, 1, 1'000'000));
    SK_TRY(r.Int("max_connections_per_peer", listener.max_connections_per_peer, 1, 1'000'000));
    SK_TRY(r.Int("idle_timeout_ms", listener.idle_timeout_ms, 1, 86'400'000));
    SK_TRY(r.Int("write_timeout_ms", listener.write_timeout_ms, 1, 3'600'000));
    SK_TRY(
        r.Int("max_in_flight_per_connection", listener.max_in_flight_per_connection, 1, 1'000'000));
    listener.request_timeout_ms = config.request_timeout_ms;
    listener.max_reply_bytes = config.max_reply_bytes;
    for (size_t j = 0; j < config.listeners.size(); ++j) {
      const Endpoint& other = config.listeners[j].endpoint;
      if (other == listener.endpoint && (other.port != 0 || other.scheme == Scheme::kInproc)) {
        return r.Error("url", fmt::format("'{}' is also listener[{}]", url, j));
      }
    }
    config.listeners.push_back(std::move(listener));
    return Status::Ok();
  });
}

Status ReadServices(const toml::table& root, const std::string& source, NodeConfig& config) {
  std::set<std::string> names;
  return ForEachTable(root, "service", source, [&](const TableReader& r) {
    ServiceConfig service;
    SK_TRY(r.String("name", service.name, true));
    SK_TRY(r.String("type", service.type, true));
    if (service.name.empty() || LooksLikeUrl(service.name))
      return r.Error("name", "must be a plain, non-empty name");
    if (!names.insert(service.name).second)
      return r.Error("name", fmt::format("'{}' is used twice", service.name));
    SK_TRY(r.Patterns("patterns", service.patterns));
    SK_TRY(r.Int("max_in_flight", service.max_in_flight, 1, 1'000'000));
    auto data = std::make_shared<Settings::Data>();
    for (const auto& [key, value] : r.table()) {
      std::string_view k = key.str();
      if (k == "name" || k == "type" || k == "patterns" || k == "max_in_flight") continue;
      data->table.insert(key, value);
    }
    service.settings = Settings(
        std::move(data), fmt::format("{}: service '{}' ({})", source, service.name, service.type));
    config.services.push_back(std::move(service));
    return Status::Ok();
  });
}

Status ReadRoutes(const toml::table& root, const std::string& source, NodeConfig& config) {
  return ForEachTable(root, "route", source, [&](const TableReader& r) {
    SK_TRY(r.CheckOnly({"pattern", "to", "timeout_ms", "token", "connections", "tls_ca_file",
                        "tls_cert_file", "tls_key_file"}));
    RouteConfig route;
    SK_TRY(r.String("pattern", route.pattern, true));
    auto pattern = Pattern::Parse(route.pattern);
    if (!pattern.ok()) return r.Error("pattern", pattern.status().message());
    SK_TRY(r.String("to", route.to, true));
    if (LooksLikeUrl(route.to)) {
      auto endpoint = ParseEndpoint(route.to);
      if (!endpoint.ok()) return r.Error("to", endpoint.status().message());
    } else {
      bool known = false;
      for (const ServiceConfig& s : config.services) known = known || s.name == route.to;
      if (!known)
        return r.Error("to", fmt::format("no [[service]] named '{}' (and not a URL)", route.to));
    }
    SK_TRY(r.Int("timeout_ms", route.timeout_ms, 1, 3'600'000));
    SK_TRY(r.String("token", route.token));
    int64_t connections = route.connections;
    SK_TRY(r.Int("connections", connections, 1, 256));
    route.connections = static_cast<int>(connections);
    SK_TRY(r.String("tls_ca_file", route.tls_ca_file));
    SK_TRY(r.String("tls_cert_file", route.tls_cert_file));
    SK_TRY(r.String("tls_key_file", route.tls_key_file));
    bool tls = LooksLikeUrl(route.to) && ParseEndpoint(route.to)->tls;
    for (const char* key : {"tls_ca_file", "tls_cert_file", "tls_key_file"}) {
      if (!tls && r.Has(key))
        return r.Error(key, "only routes to tls:// or https:// take TLS files");
    }
    if (route.tls_cert_file.empty() != route.tls_key_file.empty())
      return r.Error("tls_cert_file", "tls_cert_file and tls_key_file go together");
    config.routes.push_back(std::move(route));
    return Status::Ok();
  });
}

}  // namespace

Result<Endpoint> ClusterEndpoint(const ClusterConfig& cluster) {
  auto endpoint = ParseEndpoint(cluster.nats);
  if (!endpoint.ok()) return endpoint.status();
  endpoint->nats_files = cluster.files;
  return endpoint;
}

Result<NodeConfig> ParseNodeConfig(std::string_view toml_text, std::string source) {
  toml::table root;
  try {
    root = toml::parse(toml_text, std::string_view(source));
  } catch (const toml::parse_error& e) {
    return Status::Invalid(fmt::format("{}:{}:{}: {}", source, e.source().begin.line,
                                       e.source().begin.column, e.description()));
  }
  NodeConfig config;
  config.source = source;
  for (const auto& [key, value] : root) {
    std::string_view k = key.str();
    if (k != "node" && k != "token" && k != "listener" && k != "service" && k != "route" &&
        k != "cluster") {
      return Status::Invalid(fmt::format(
          "{}: {}: unknown section (node, token, listener, service, route, cluster)", source, k));
    }
  }
  SK_TRY(ReadNode(root, source, config));
  SK_TRY(ReadTokens(root, source, config));
  SK_TRY(ReadListeners(root, source, config));
  SK_TRY(ReadServices(root, source, config));
  SK_TRY(ReadRoutes(root, source, config));
  SK_TRY(ReadCluster(root, source, config));
  return config;
}

Result<NodeConfig> LoadNodeConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Invalid(fmt::format("{}: cannot read the file", path));
  std::ostringstream text;
  text << in.rdbuf();
  return ParseNodeConfig(text.str(), path);
}

}  // namespace shardkit::services
