// The HTTP/1.1 transport (Beast): POST /act with the message as the body; GET /health; GET
// /metrics; GET /console… (the node's web console, where the listener has `console`).
// Keep-alive; one request at a time per connection.
//
// Server: one strand per connection. The whole request (headers and body) must arrive within
// read_timeout_ms of the connection becoming ready for it, so a slow-loris client is dropped; a
// body over max_message_bytes is answered 413 and the connection closed. A reply not ready by the
// request's deadline is answered 504 `timeout`. Replies echo the seneca-id and seneca-origin
// headers and carry seneca-kind: res, as Seneca's HTTP transport expects; a success is the bare
// reply object (status 200), an error is {"error$":{…}} with the status of HttpStatusFor. Seneca
// callers get replies and errors in the forms their transports read (seneca_wire.h).
//
// The client is in http_client.cc.
#include "io.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <deque>
#include <iterator>
#include <unordered_map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "http_request.h"
#include "http_stream.h"
#include "seneca_wire.h"
#include "server.h"
#include "shardkit/message/json.h"
#include "wire.h"

namespace shardkit::services {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using error_code = boost::system::error_code;

constexpr int kSenecaOrderWaits = 5;

std::string ErrorBody(const Status& status) { return ToJson(ErrorMessage(status)); }

}  // namespace

std::optional<Caller> HttpCaller(const HttpRequest& request, const ListenerConfig& config,
                                 std::string peer) {
  if (!RequiresToken(config)) return AnonymousCaller(config, std::move(peer));
  std::string secret = SecretOf(std::string_view(request[http::field::authorization].data(),
                                                 request[http::field::authorization].size()));
  if (secret.empty()) return std::nullopt;
  return Authenticate(config, secret, std::move(peer));
}

Result<Message> ActRequestMessage(const HttpRequest& request, std::string_view body,
                                  const std::optional<Caller>& caller, const ListenerConfig& config,
                                  const ListenerHooks& hooks, int64_t now_ms) {
  if (!caller) return Unauthorized();
  CodecLimits limits;
  limits.max_bytes = config.max_message_bytes;
  auto parsed = ParseMessage(body, limits);
  if (!parsed.ok()) return parsed.status();
  Message message = std::move(parsed).value();
  // Header values become meta$ strings, so they must be text like the body (HTTP allows any
  // byte from 0x80 on; the reply would not be JSON).
  for (const char* header : {"seneca-id", "Idempotency-Key"}) {
    auto field = request.find(header);
    if (field != request.end() && !IsUtf8({field->value().data(), field->value().size()}))
      return Status::InvalidField(header, "the header's value is not valid UTF-8");
  }
  if (auto id = request.find("seneca-id"); id != request.end() && message.meta().id.empty())
    message.meta().id = std::string(id->value());
  // The Idempotency-Key header (IETF httpapi draft) is meta$.idempotency_key unless the body
  // gives one.
  if (auto key = request.find("Idempotency-Key");
      key != request.end() && message.meta().idempotency_key.empty())
    message.meta().idempotency_key = std::string(key->value());
  Status admitted = AdmitIncoming(message, config, hooks, *caller, now_ms);
  if (!admitted.ok()) return admitted;
  return message;
}

void AppendResponseHead(const ResponseHead& head, std::string& out) {
  beast::string_view reason = http::obsolete_reason(static_cast<http::status>(head.status));
  fmt::format_to(std::back_inserter(out), "HTTP/{}.{} {:03} {}\r\n", head.version / 10,
                 head.version % 10, head.status, std::string_view(reason.data(), reason.size()));
  auto field = [&out](std::string_view name, std::string_view value) {
    out.append(name).append(": ").append(value).append("\r\n");
  };
  field("Server", "shardkit");
  field("Content-Type", head.content_type);
  field("seneca-kind", "res");
  if (!head.seneca_id.empty()) field("seneca-id", head.seneca_id);
  if (!head.seneca_origin.empty()) field("seneca-origin", head.seneca_origin);
  if (head.headers != nullptr) {
    for (const auto& [name, value] : *head.headers) field(name, value);
  }
  // Beast's keep_alive(): HTTP/1.1 keeps alive unless told to close, HTTP/1.0 closes unless told
  // to keep alive.
  if (head.version >= 11 && !head.keep_alive) field("Connection", "close");
  if (head.version < 11 && head.keep_alive) field("Connection", "keep-alive");
  fmt::format_to(std::back_inserter(out), "Content-Length: {}\r\n\r\n", head.body_bytes);
}

namespace {

// --- Server
// ---------------------------------------------------------------------------------------

template <typename Stream>
Stream MakeHttpStream(tcp::socket socket, const std::shared_ptr<ServerTls>& tls) {
  if constexpr (std::is_same_v<Stream, TlsHttp>) {
    Stream stream(beast::tcp_stream(std::move(socket)), *tls->current());
    KeepRecordBuffers(stream.native_handle());
    return stream;
  } else {
    return Stream(std::move(socket));
  }
}

// One connection of an http:// (Stream = PlainHttp) or https:// (TlsHttp) listener.
template <typename Stream>
class HttpConnection : public std::enable_shared_from_this<HttpConnection<Stream>> {
  using HttpShared = Server<HttpConnection<Stream>>;
  using std::enable_shared_from_this<HttpConnection<Stream>>::shared_from_this;

 public:
  HttpConnection(tcp::socket socket, std::shared_ptr<HttpShared> shared, uint64_t number)
      : stream_(MakeHttpStream<Stream>(std::move(socket), shared->tls)),
        deadline_(stream_.get_executor()),
        order_wait_(stream_.get_executor()),
        read_sweep_(stream_.get_executor()),
        busy_sweep_(stream_.get_executor()),
        shared_(std::move(shared)),
        number_(number) {}

  ~HttpConnection() { shared_->Forget(number_); }

  void Start() {
    peer_ = ReadyAccepted(Lowest().socket());
    if constexpr (std::is_same_v<Stream, TlsHttp>) {
      Lowest().expires_after(std::chrono::milliseconds(shared_->config.read_timeout_ms));
      WaitForHello();
    } else {
      DoRead();
    }
  }

  // What the listener asks of each connection (server.h): when it stops accepting and when it
  // closes, an HTTP connection closes once idle.
  void Drain() { CloseWhenIdle(); }
  void CloseAfterFlush() { CloseWhenIdle(); }

  // Closes when idle, or after the response being prepared.
  void CloseWhenIdle() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->close_after_response_ = true;
      if (!self->busy_ && !self->handshaking_) self->CloseNow();
    });
  }

 private:
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  // The client's first bytes decide: a TLS handshake (within read_timeout_ms), or a plain-text
  // client, answered 400 in plain HTTP that this port speaks TLS, then closed.
  void WaitForHello() {
    Lowest().socket().async_wait(tcp::socket::wait_read,
                                 [self = shared_from_this()](const error_code& ec) {
                                   if (ec || self->closed_) return self->CloseNow();
                                   self->Handshake();
                                 });
  }

  void Handshake() {
    FirstByte first = PeekFirstByte(Lowest().socket());
    if (first == FirstByte::kNothingYet) return WaitForHello();
    if (first == FirstByte::kClosed) return CloseNow();
    if (first == FirstByte::kPlain) return RefusePlainText();
    handshaking_ = true;
    stream_.async_handshake(asio::ssl::stream_base::server,
                            [self = shared_from_this()](const error_code& ec) {
                              self->handshaking_ = false;
                              // From here on the connection's own limit (ExpireAt) applies.
                              self->Lowest().expires_never();
                              if (!ec) return self->DoRead();
                              spdlog::info("http {}: TLS handshake with {} failed: {}", self->url(),
                                           self->peer_, ec.message());
                              self->shared_->counters->Dropped(Drop::kTlsHandshake);
                              self->CloseNow();
                            });
  }

  // Discards what the client sent (so closing does not reset the connection before it reads the
  // answer), answers 400 in plain text and closes.
  void RefusePlainText() {
    spdlog::info("http {}: {} sent plain text to a TLS port", url(), peer_);
    shared_->counters->Dropped(Drop::kTlsHandshake);
    tcp::socket& socket = Lowest().socket();
    error_code ec;
    socket.non_blocking(true, ec);
    char discard[4096];
    for (int i = 0; i < 16 && !ec; ++i) socket.read_some(asio::buffer(discard), ec);  // <= 64 KiB
    std::string body = ErrorBody(
        Status::Invalid(fmt::format("{} speaks TLS: connect with https://, not http://", url())));
    auto answer = std::make_shared<std::string>(fmt::format(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"
        "Content-Length: {}\r\n\r\n{}",
        body.size(), body));
    asio::async_write(
        socket, asio::buffer(*answer),
        [self = shared_from_this(), answer](const error_code&, size_t) { self->CloseNow(); });
  }

  void DoRead() {
    if (closed_) return;
    if (close_after_response_ || shared_->draining.load()) {
      CloseNow();
      return;
    }
    busy_ = false;
    parser_.emplace();
    parser_->body_limit(shared_->config.max_message_bytes);
    parser_->header_limit(kHttpHeaderLimit);
    ExpireAt(NowMs() + shared_->config.read_timeout_ms);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](const error_code& ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(const error_code& ec) {
    if (ec == http::error::body_limit) {
      busy_ = true;
      keep_alive_ = false;
      version_ = 11;
      Respond(http::status::payload_too_large,
              ErrorBody(Status::Invalid(fmt::format("body exceeds the limit of {} bytes",
                                                    shared_->config.max_message_bytes))),
              "application/json");
      return;
    }
    if (ec) {
      CloseNow();
      return;
    }
    busy_ = true;
    // The response must be written by the request's latest deadline plus write_timeout_ms: a
    // client that does not read it is dropped.
    ExpireAt(NowMs() + shared_->config.request_timeout_ms + shared_->config.write_timeout_ms);
    http::request<http::string_body>& request = parser_->get();
    version_ = request.version();
    keep_alive_ = request.keep_alive();
    seneca_id_ = std::string(request["seneca-id"]);
    seneca_origin_ = std::string(request["seneca-origin"]);
    caller_ = request["seneca-kind"] == "req" ? SenecaCaller::kTransport : SenecaCaller::kNone;
    seneca_web_id_.clear();
    std::string_view target(request.target().data(), request.target().size());
    if (size_t q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);

    if (target == "/act") {
      if (request.method() != http::verb::post) {
        Respond(http::status::method_not_allowed, ErrorBody(Status::Invalid("/act takes POST")),
                "application/json");
        return;
      }
      Act(request);
      return;
    }
    if (request.method() == http::verb::get && (target == "/health" || target == "/metrics")) {
      Stats(request, target);
      return;
    }
    if (request.method() == http::verb::get && shared_->config.console && shared_->hooks.console &&
        (target == "/console" || target.starts_with("/console/"))) {
      Console(request, target);
      return;
    }
    Respond(http::status::not_found,
            ErrorBody(Status::NotFound(fmt::format(
                "no resource '{}' (POST /act, GET /health, GET /metrics, GET /console)", target))),
            "application/json");
  }

  // /health details and /metrics follow the rules of a sys:stats message (access.h).
  void Stats(const http::request<http::string_body>& request, std::string_view target) {
    auto caller = CallerOf(request);
    bool may = caller && MayReadStats(*caller, shared_->config, shared_->hooks);
    if (target == "/health") {
      bool details = may && shared_->hooks.health_json;
      std::string status =
          shared_->draining.load() ? "{\"status\":\"stopping\"}" : "{\"status\":\"ok\"}";
      Respond(http::status::ok, details ? shared_->hooks.health_json() : std::move(status),
              "application/json");
    } else if (!may) {
      RespondResult(caller ? Status::Invalid("forbidden: /metrics needs an admin token on a "
                                             "listener that serves sys:stats",
                                             std::string(kForbiddenDetails))
                           : Unauthorized());
    } else {
      Respond(http::status::ok, shared_->hooks.metrics_text ? shared_->hooks.metrics_text() : "",
              "text/plain; version=0.0.4");
    }
  }

  // The console shows what sys:stats does: the rule of /metrics (access.h). A browser asked for
  // credentials sends the token as a Basic password.
  void Console(const http::request<http::string_body>& request, std::string_view target) {
    auto caller = CallerOf(request);
    if (!caller) {
      Respond(http::status::unauthorized, ErrorBody(Unauthorized()), "application/json",
              {{"WWW-Authenticate", "Basic realm=\"shardkit console\""}});
    } else if (!MayReadStats(*caller, shared_->config, shared_->hooks)) {
      RespondResult(Status::Invalid(
          "forbidden: the console needs an admin token on a listener that serves sys:stats",
          std::string(kForbiddenDetails)));
    } else {
      Page(request, target);
    }
  }

  // Who sent `request` (access.h); nullopt: the listener asks for a token and it is wrong.
  std::optional<Caller> CallerOf(const http::request<http::string_body>& request) {
    return HttpCaller(request, shared_->config, peer_);
  }

  void Act(http::request<http::string_body>& request) {
    std::string_view body = request.body();
    std::optional<std::string> web;
    if (caller_ == SenecaCaller::kNone && (web = FromSenecaWeb(body, seneca_web_id_))) {
      caller_ = SenecaCaller::kWeb;
      body = *web;
    }
    Result<Message> admitted = ActRequestMessage(request, body, CallerOf(request), shared_->config,
                                                 shared_->hooks, NowMs());
    if (!admitted.ok()) {
      RespondResult(admitted.status());
      return;
    }
    Message message = std::move(admitted).value();
    ++requests_;
    if (caller_ == SenecaCaller::kTransport && requests_ == 1) {
      DispatchInOrder(std::make_shared<Message>(std::move(message)), 0);
      return;
    }
    Dispatch(std::move(message));
  }

  // seneca-transport opens a connection per request and does not wait for a save's reply before
  // it sends the next request (an entity that came back over the transport saves without a
  // promise), so an app's order is the order of its connections: a request waits, at most
  // kSenecaOrderWaits ms, until the connections accepted before its own have delivered their
  // first request. Seneca's own listener keeps that order by handling requests on one thread.
  void DispatchInOrder(std::shared_ptr<Message> message, int waited) {
    if (waited < kSenecaOrderWaits && EarlierConnectionPending()) {
      order_wait_.expires_after(std::chrono::milliseconds(1));
      order_wait_.async_wait([self = shared_from_this(), message, waited](const error_code& ec) {
        if (ec || self->closed_) return;
        self->DispatchInOrder(message, waited + 1);
      });
      return;
    }
    Dispatch(std::move(*message));
  }

  bool EarlierConnectionPending() const {
    for (const auto& connection : shared_->Snapshot()) {
      if (connection->number_ < number_ && !connection->first_read_done_.load()) return true;
    }
    return false;
  }

  void Dispatch(Message message) {
    uint64_t seq = ++seq_;
    waiting_ = true;
    const int64_t deadline = message.meta().deadline;
    shared_->hooks.dispatch(
        std::move(message), [self = shared_from_this(), seq](Result<Message> result) {
          HttpConnection* connection = self.get();
          asio::dispatch(connection->stream_.get_executor(),
                         [self = std::move(self), seq, result = std::move(result)]() mutable {
                           if (seq != self->seq_ || !self->waiting_) return;
                           self->waiting_ = false;
                           self->deadline_.cancel();
                           self->RespondResult(std::move(result));
                         });
        });
    first_read_done_.store(true);  // only now: the request has reached its service
    // A reply given inline (an in-memory service) has been answered already: no timer for it. A
    // later reply comes through this strand, so it cannot slip in before the timer is set.
    if (waiting_ && seq == seq_) {
      deadline_.expires_after(std::chrono::milliseconds(std::max<int64_t>(0, deadline - NowMs())));
      deadline_.async_wait([self = shared_from_this(), seq](const error_code& ec) {
        if (ec || seq != self->seq_ || !self->waiting_) return;
        self->waiting_ = false;
        self->RespondResult(Status::Timeout("no reply before the request's deadline"));
      });
    }
  }

  // The web console: answered by the node's console, possibly on another thread.
  void Page(const http::request<http::string_body>& request, std::string_view path) {
    std::string_view full(request.target().data(), request.target().size());
    PageRequest page{std::string(path),
                     std::string(full.size() > path.size() ? full.substr(path.size() + 1) : "")};
    uint64_t seq = ++seq_;
    waiting_ = true;
    deadline_.expires_after(std::chrono::milliseconds(shared_->config.request_timeout_ms));
    deadline_.async_wait([self = shared_from_this(), seq](const error_code& ec) {
      if (ec || seq != self->seq_ || !self->waiting_) return;
      self->waiting_ = false;
      self->RespondResult(Status::Timeout("the console's answer was not ready in time"));
    });
    shared_->hooks.console(
        std::move(page), shared_->config, [self = shared_from_this(), seq](PageResponse response) {
          HttpConnection* connection = self.get();
          asio::dispatch(connection->stream_.get_executor(),
                         [self = std::move(self), seq, response = std::move(response)] {
                           if (seq != self->seq_ || !self->waiting_) return;
                           self->waiting_ = false;
                           self->deadline_.cancel();
                           self->Respond(static_cast<http::status>(response.status), response.body,
                                         response.content_type, response.headers);
                         });
        });
  }

  void RespondResult(Result<Message> result) {
    const size_t max_bytes = shared_->config.max_reply_bytes;
    if (caller_ != SenecaCaller::kNone) {
      const std::string& id = caller_ == SenecaCaller::kWeb ? seneca_web_id_ : seneca_id_;
      SenecaResponse answer = ToSeneca(caller_, result, id);
      if (answer.body.size() > max_bytes)
        answer = ToSeneca(caller_, ReplyTooLarge(answer.body.size(), max_bytes), id);
      Respond(static_cast<http::status>(answer.status), std::move(answer.body), "application/json");
      return;
    }
    if (result.ok()) {
      result->meta() = Meta{};
      std::string body = ToJson(*result);
      if (body.size() > max_bytes) return RespondResult(ReplyTooLarge(body.size(), max_bytes));
      Respond(http::status::ok, std::move(body), "application/json");
    } else {
      Respond(static_cast<http::status>(HttpStatusFor(result.status())), ErrorBody(result.status()),
              "application/json");
    }
  }

  void Respond(http::status status, std::string body, std::string_view content_type,
               const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    first_read_done_.store(true);
    if (closed_) return;
    const bool keep_alive = keep_alive_ && !close_after_response_ && !shared_->draining.load() &&
                            status != http::status::payload_too_large;
    auto text = std::make_shared<std::string>();
    text->reserve(256 + body.size());
    AppendResponseHead({static_cast<unsigned>(status), version_, content_type, seneca_id_,
                        seneca_origin_, &headers, keep_alive, body.size()},
                       *text);
    *text += body;
    asio::async_write(stream_, asio::buffer(*text),
                      [self = shared_from_this(), text, keep_alive](const error_code& ec, size_t) {
                        if (ec || !keep_alive) {
                          self->CloseNow();
                          return;
                        }
                        self->DoRead();
                      });
  }

  void CloseNow() {
    if (closed_) return;
    closed_ = true;
    first_read_done_.store(true);
    busy_ = false;
    deadline_.cancel();
    order_wait_.cancel();
    read_sweep_.Cancel();
    busy_sweep_.Cancel();
    error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Lowest().close();
  }

  // The connection's one time limit: for the next request while reading, for the response once a
  // request is read. A timer for each of the two, set for the earliest limit asked and moved on
  // when it fires, checks it: each sees its limits only move later, so a request costs a clock
  // read and no timer operation (one timer for both was set earlier, for the shorter read limit,
  // after every response).
  void ExpireAt(int64_t at_ms) {
    expires_ms_ = at_ms;
    if (closed_) return;
    (busy_ ? busy_sweep_ : read_sweep_).ArmAt(at_ms, [self = shared_from_this()] {
      if (!self->closed_) self->Sweep();
    });
  }

  void Sweep() {
    if (NowMs() <= expires_ms_) return ExpireAt(expires_ms_);
    if (busy_) {
      shared_->counters->Dropped(Drop::kNotReading);
    } else {
      spdlog::debug("http {}: dropping a connection that did not send a request in time", url());
      shared_->counters->Dropped(parser_ && parser_->got_some() ? Drop::kFrameTimeout
                                                                : Drop::kIdle);
    }
    CloseNow();
  }

  const std::string& url() const { return shared_->url; }

  Stream stream_;
  asio::steady_timer deadline_;
  asio::steady_timer order_wait_;
  EarliestTimer read_sweep_;  // ExpireAt's while reading a request
  EarliestTimer busy_sweep_;  // ExpireAt's from a request read to its response written
  int64_t expires_ms_ = 0;    // the connection's time limit (ExpireAt)
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<HttpShared> shared_;
  const uint64_t number_;
  uint64_t seq_ = 0;
  uint64_t requests_ = 0;  // requests read on this connection
  // The first request has been dispatched or answered (or none will come); read by the
  // connections accepted after this one (DispatchInOrder).
  std::atomic<bool> first_read_done_{false};
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool waiting_ = false;  // a reply from the node is awaited
  bool busy_ = false;     // between a complete request and its response being written
  bool close_after_response_ = false;
  bool closed_ = false;
  bool handshaking_ = false;
  std::string seneca_id_;
  std::string seneca_origin_;
  SenecaCaller caller_ = SenecaCaller::kNone;  // of the request being answered
  std::string seneca_web_id_;                  // meta$.id of a built-in Seneca transport's request
  std::string peer_;                           // the remote address, for the audit log
};

}  // namespace

Result<std::unique_ptr<Listener>> StartHttpListener(IoRuntime& runtime,
                                                    const ListenerConfig& config,
                                                    ListenerHooks hooks) {
  IoRuntime::Impl& io = runtime.impl();
  if (config.endpoint.tls)
    return StartServer<HttpConnection<TlsHttp>>(io, config, std::move(hooks));
  return StartServer<HttpConnection<PlainHttp>>(io, config, std::move(hooks));
}

}  // namespace shardkit::services
