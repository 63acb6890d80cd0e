// The HTTP/1.1 transport's client (http.cc has the listener): POST /act on keep-alive
// connections on one strand, at most `connections` at once; more requests wait in a bounded queue
// (`overloaded` past it). https:// is the same inside TLS.
#include "io.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <deque>

#include <fmt/format.h>

#include "http_stream.h"
#include "seneca_wire.h"
#include "shardkit/message/json.h"
#include "wire.h"

namespace shardkit::services {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using error_code = boost::system::error_code;

constexpr size_t kClientQueueLimit = 10'000;

// The client of an http:// (Stream = PlainHttp) or https:// (TlsHttp) endpoint.
template <typename Stream>
class HttpClient final : public Handler, public std::enable_shared_from_this<HttpClient<Stream>> {
  using std::enable_shared_from_this<HttpClient<Stream>>::shared_from_this;
  static constexpr bool kTls = std::is_same_v<Stream, TlsHttp>;

 public:
  HttpClient(IoRuntime& runtime, Endpoint endpoint, ClientOptions options,
             std::shared_ptr<SslContext> tls)
      : strand_(asio::make_strand(runtime.impl().io)),
        endpoint_(std::move(endpoint)),
        url_(endpoint_.ToString()),
        options_(std::move(options)),
        tls_(std::move(tls)) {}

  void Handle(Message message, const Context&, ReplyFn reply) override {
    asio::dispatch(strand_, [self = shared_from_this(), message = std::move(message),
                             reply = std::move(reply)]() mutable {
      self->Submit(Job{std::move(message), std::move(reply), 0, {}});
    });
  }

 private:
  struct Job {
    Message message;
    ReplyFn reply;
    int64_t deadline_ms;
    std::string original_id;
    bool retried = false;  // sent again once after a reused connection turned out closed
  };
  struct Connection {
    Connection(asio::strand<asio::io_context::executor_type>& strand, SslContext* tls)
        : stream(MakeStream(strand, tls)) {}
    static Stream MakeStream(asio::strand<asio::io_context::executor_type>& strand,
                             SslContext* tls) {
      if constexpr (kTls) {
        return Stream(strand, *tls);
      } else {
        return Stream(strand);
      }
    }
    beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream); }
    Stream stream;
    beast::flat_buffer buffer;
    bool connected = false;
    int served = 0;  // responses read on this connection
    http::request<http::string_body> request;
    std::optional<http::response_parser<http::string_body>> parser;
  };

  void Submit(Job job) {
    int64_t now = NowMs();
    int64_t budget = CallBudgetMs(job.message, options_.timeout.count(), now);
    if (budget <= 0) {
      job.reply(Status::Timeout(fmt::format("deadline passed before '{}' was sent to {}",
                                            job.message.RoutingString(), url_)));
      return;
    }
    job.deadline_ms = now + budget;
    job.original_id = job.message.meta().id;
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      Run(std::move(connection), std::move(job));
    } else if (open_ < std::max(1, options_.connections)) {
      ++open_;
      Run(NewConnection(), std::move(job));
    } else if (waiting_.size() < kClientQueueLimit) {
      waiting_.push_back(std::move(job));
    } else {
      job.reply(Status::Overloaded(fmt::format("more than {} requests wait for a connection to {}",
                                               kClientQueueLimit, url_)));
    }
  }

  // Starts the next waiting job on `connection`, or parks it as idle.
  void Next(std::shared_ptr<Connection> connection) {
    int64_t now = NowMs();
    while (!waiting_.empty()) {
      Job job = std::move(waiting_.front());
      waiting_.pop_front();
      if (job.deadline_ms <= now) {
        job.reply(Status::Timeout(fmt::format("no connection to {} free in time", url_)));
        continue;
      }
      if (connection) {
        Run(std::move(connection), std::move(job));
      } else {
        ++open_;
        Run(NewConnection(), std::move(job));
      }
      return;
    }
    if (connection) idle_.push_back(std::move(connection));
  }

  void Run(std::shared_ptr<Connection> connection, Job job) {
    std::string body = ToJson(job.message);
    if (body.size() > options_.max_message_bytes) {
      job.reply(Status::Invalid(fmt::format("message of {} bytes exceeds the limit of {}",
                                            body.size(), options_.max_message_bytes),
                                "{\"http_status\":413}"));
      Next(std::move(connection));
      return;
    }
    auto& request = connection->request;
    request = {};
    request.method(http::verb::post);
    request.target("/act");
    request.version(11);
    request.set(http::field::host, fmt::format("{}:{}", endpoint_.host, endpoint_.port));
    request.set(http::field::content_type, "application/json");
    if (!options_.token.empty())
      request.set(http::field::authorization, "Bearer " + options_.token);
    if (!job.message.meta().id.empty()) request.set("seneca-id", job.message.meta().id);
    request.keep_alive(true);
    request.body() = std::move(body);
    request.prepare_payload();
    connection->lowest().expires_after(
        std::chrono::milliseconds(std::max<int64_t>(1, job.deadline_ms - NowMs())));
    auto shared_job = std::make_shared<Job>(std::move(job));
    if (connection->connected) {
      Write(std::move(connection), std::move(shared_job));
      return;
    }
    error_code ec;
    auto address = asio::ip::make_address(endpoint_.host, ec);
    if (ec) {
      Fail(std::move(connection), shared_job,
           Status::Unavailable(fmt::format("{}: the host must be an IP address", url_)));
      return;
    }
    connection->lowest().async_connect(
        tcp::endpoint(address, endpoint_.port),
        [self = shared_from_this(), connection, shared_job](const error_code& ec) mutable {
          if (ec) {
            self->Fail(std::move(connection), shared_job, self->StatusOf(ec, "cannot connect to"));
            return;
          }
          error_code ignored;
          connection->lowest().socket().set_option(tcp::no_delay(true), ignored);
          self->Handshake(std::move(connection), std::move(shared_job));
        });
  }

  void Handshake(std::shared_ptr<Connection> connection, std::shared_ptr<Job> job) {
    if constexpr (kTls) {
      PrepareClientStream(connection->stream.native_handle(), endpoint_.host);
      Connection* c = connection.get();
      c->stream.async_handshake(
          asio::ssl::stream_base::client,
          [self = shared_from_this(), connection, job](const error_code& ec) mutable {
            if (!ec) {
              connection->connected = true;
              return self->Write(std::move(connection), std::move(job));
            }
            Status failed = ec == beast::error::timeout
                                ? self->StatusOf(ec, "")
                                : Status::Unavailable(fmt::format(
                                      "TLS handshake with {} failed: {}", self->url_,
                                      HandshakeError(connection->stream.native_handle(), ec)));
            self->Fail(std::move(connection), job, std::move(failed));
          });
    } else {
      connection->connected = true;
      Write(std::move(connection), std::move(job));
    }
  }

  void Write(std::shared_ptr<Connection> connection, std::shared_ptr<Job> job) {
    Connection* c = connection.get();
    http::async_write(
        c->stream, c->request,
        [self = shared_from_this(), connection, job](const error_code& ec, size_t) mutable {
          if (ec) {
            self->Fail(std::move(connection), job, self->StatusOf(ec, "cannot send to"));
            return;
          }
          connection->parser.emplace();
          connection->parser->body_limit(self->options_.ReplyLimit());
          Connection* c = connection.get();
          http::async_read(c->stream, c->buffer, *c->parser,
                           [self, connection, job](const error_code& ec, size_t) mutable {
                             if (ec) {
                               self->Fail(std::move(connection), job,
                                          self->StatusOf(ec, "no reply from"));
                               return;
                             }
                             self->OnResponse(std::move(connection), std::move(job));
                           });
        });
  }

  void OnResponse(std::shared_ptr<Connection> connection, std::shared_ptr<Job> job) {
    connection->lowest().expires_never();
    auto& response = connection->parser->get();
    unsigned status = response.result_int();
    bool keep_alive = response.keep_alive();
    auto parsed = ParseMessage(response.body());
    Result<Message> result = Status::Internal("unset");
    // A Seneca service answers null, an array, or an error body without error$.
    std::optional<Result<Message>> seneca;
    if (!parsed.ok() || (status >= 300 && !parsed->Has("error$")))
      seneca = FromSenecaReply(status, response.body());
    if (seneca) {
      result = std::move(*seneca);
      if (result.ok()) result->meta().id = job->original_id;
    } else if (!parsed.ok()) {
      result = Status::Unavailable(
          fmt::format("{} answered HTTP {} with a body that is not a message", url_, status));
    } else if (status >= 200 && status < 300) {
      result = std::move(parsed).value();
      result->meta() = Meta{};
      result->meta().id = job->original_id;
    } else {
      result = FromWire(std::move(parsed).value());
      if (result.ok())
        result = Status::Internal(fmt::format("{} answered HTTP {} without error$", url_, status));
    }
    job->reply(std::move(result));
    ++connection->served;
    if (!keep_alive) {
      --open_;
      connection.reset();
    }
    Next(std::move(connection));
  }

  Status StatusOf(const error_code& ec, std::string_view what) const {
    if (ec == beast::error::timeout)
      return Status::Timeout(fmt::format("no reply from {} in time", url_));
    return Status::Unavailable(fmt::format("{} {}: {}", what, url_, ec.message()));
  }

  // The connection is unusable: close it, answer the job, serve the queue with a new one.
  // A keep-alive connection the server has closed meanwhile (idle timeout, restart) fails before
  // any reply: the request is sent once more on a new connection.
  void Fail(std::shared_ptr<Connection> connection, const std::shared_ptr<Job>& job,
            Status status) {
    connection->lowest().close();
    if (connection->served > 0 && !job->retried && status.code() == Code::kUnavailable) {
      job->retried = true;
      Run(NewConnection(), std::move(*job));
      return;
    }
    --open_;
    job->reply(std::move(status));
    Next(nullptr);
  }

  std::shared_ptr<Connection> NewConnection() {
    return std::make_shared<Connection>(strand_, tls_.get());
  }

  asio::strand<asio::io_context::executor_type> strand_;
  const Endpoint endpoint_;
  const std::string url_;
  const ClientOptions options_;
  const std::shared_ptr<SslContext> tls_;          // https:// only
  std::vector<std::shared_ptr<Connection>> idle_;  // on strand_
  std::deque<Job> waiting_;                        // on strand_
  int open_ = 0;                                   // on strand_
};

}  // namespace

Result<std::shared_ptr<Handler>> MakeHttpClient(IoRuntime& runtime, const Endpoint& endpoint,
                                                ClientOptions options) {
  std::shared_ptr<Handler> client;
  if (!endpoint.tls) {
    client =
        std::make_shared<HttpClient<PlainHttp>>(runtime, endpoint, std::move(options), nullptr);
    return client;
  }
  auto tls = MakeClientTlsContext(options);
  if (!tls.ok()) return tls.status();
  client = std::make_shared<HttpClient<TlsHttp>>(runtime, endpoint, std::move(options), *tls);
  return client;
}

}  // namespace shardkit::services
