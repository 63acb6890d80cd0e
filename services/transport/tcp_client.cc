// The TCP transport's client (tcp.h).
#include "tcp.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <unordered_map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "tls_stream.h"
#include "wire.h"

namespace shardkit::services {
namespace {

using error_code = boost::system::error_code;

// --- Client
// ---------------------------------------------------------------------------------------

// One connection of a tcp:// (Stream = tcp::socket) or tls:// (Stream = TlsStream) client. The
// stream is made anew for each connect (a TLS stream cannot be reused); callbacks hold the one
// they were started on.
template <typename Stream>
class ClientConnection : public std::enable_shared_from_this<ClientConnection<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  ClientConnection(asio::io_context& io, Endpoint endpoint, ClientOptions options,
                   std::string id_prefix, std::shared_ptr<SslContext> tls)
      : strand_(asio::make_strand(io)),
        sweep_(strand_),
        endpoint_(std::move(endpoint)),
        url_(endpoint_.ToString()),
        options_(std::move(options)),
        id_prefix_(std::move(id_prefix)),
        tls_(std::move(tls)) {}

  void Send(Message message, ReplyFn reply) {
    asio::dispatch(strand_, [self = this->shared_from_this(), message = std::move(message),
                             reply = std::move(reply)]() mutable {
      self->DoSend(std::move(message), std::move(reply));
    });
  }

  // Refuses new requests; requests in flight still get their replies (or time out), then the
  // connection closes. So a reload that drops a route does not fail requests already sent on it.
  void Close() {
    asio::dispatch(strand_, [self = this->shared_from_this()] {
      self->closed_ = true;
      self->CloseIfDone();
    });
  }

 private:
  struct Pending {
    ReplyFn reply;
    std::string original_id;
    int64_t deadline;
  };

  void CloseIfDone() {
    if (!closed_ || !pending_.empty()) return;
    sweep_.cancel();
    Disconnect(Status::Unavailable(fmt::format("client of {} closed", url_)));
  }

  void DoSend(Message message, ReplyFn reply) {
    if (closed_) {
      reply(Status::Unavailable(fmt::format("client of {} closed", url_)));
      return;
    }
    int64_t now = NowMs();
    int64_t budget = CallBudgetMs(message, options_.timeout.count(), now);
    if (budget <= 0) {
      reply(Status::Timeout(fmt::format("deadline passed before '{}' was sent to {}",
                                        message.RoutingString(), url_)));
      return;
    }
    std::string original = message.meta().id;
    std::string wire_id = original;
    if (wire_id.empty() || pending_.count(wire_id) != 0)
      wire_id = fmt::format("{}{:x}", id_prefix_, next_id_++);
    message.meta().id = wire_id;
    size_t before = out_.size();
    AppendFrame(message, out_);
    size_t bytes = out_.size() - before - kFrameHeaderBytes;
    if (bytes > options_.max_message_bytes) {
      out_.resize(before);
      reply(Status::Invalid(fmt::format("message of {} bytes exceeds the limit of {}", bytes,
                                        options_.max_message_bytes),
                            "{\"http_status\":413}"));
      return;
    }
    pending_.emplace(std::move(wire_id),
                     Pending{std::move(reply), std::move(original), now + budget});
    ArmSweep();
    if (state_ == State::kDisconnected) {
      Connect();
    } else if (state_ == State::kConnected) {
      Flush();
    }
  }

  void Connect() {
    state_ = State::kConnecting;
    connect_started_ms_ = NowMs();
    uint64_t generation = ++generation_;
    if constexpr (kTls) {
      stream_ = std::make_shared<Stream>(strand_, *tls_);
      PrepareClientStream(stream_->native_handle(), endpoint_.host);
    } else {
      stream_ = std::make_shared<Stream>(strand_);
    }
    error_code ec;
    auto address = asio::ip::make_address(endpoint_.host, ec);
    if (ec) {
      auto resolver = std::make_shared<tcp::resolver>(strand_);
      resolver->async_resolve(
          endpoint_.host, std::to_string(endpoint_.port),
          [self = this->shared_from_this(), resolver, generation](
              const error_code& ec, tcp::resolver::results_type results) {
            if (generation != self->generation_) return;
            if (ec || results.empty()) {
              self->OnConnect(generation, ec ? ec : asio::error::host_not_found);
              return;
            }
            SocketOf(*self->stream_)
                .async_connect(*results.begin(),
                               [self, generation, stream = self->stream_](const error_code& ec) {
                                 self->OnConnect(generation, ec);
                               });
          });
      return;
    }
    SocketOf(*stream_).async_connect(
        tcp::endpoint(address, endpoint_.port),
        [self = this->shared_from_this(), generation, stream = stream_](const error_code& ec) {
          self->OnConnect(generation, ec);
        });
  }

  void OnConnect(uint64_t generation, const error_code& ec) {
    if (generation != generation_) return;
    if (ec) {
      Disconnect(Status::Unavailable(fmt::format("cannot connect to {}: {}", url_, ec.message())));
      return;
    }
    error_code ignored;
    SocketOf(*stream_).set_option(tcp::no_delay(true), ignored);
    if constexpr (kTls) {
      stream_->async_handshake(
          asio::ssl::stream_base::client,
          [self = this->shared_from_this(), generation, stream = stream_](const error_code& ec) {
            if (generation != self->generation_) return;
            if (ec) {
              self->Disconnect(
                  Status::Unavailable(fmt::format("TLS handshake with {} failed: {}", self->url_,
                                                  HandshakeError(stream->native_handle(), ec))));
              return;
            }
            self->OnConnected(generation);
          });
    } else {
      OnConnected(generation);
    }
  }

  void OnConnected(uint64_t generation) {
    state_ = State::kConnected;
    refusal_ = Status::Ok();
    if (!options_.token.empty()) {
      std::string hello;
      Message auth;
      auth.SetString("auth$", options_.token);
      auth.meta().id = "auth$";
      AppendFrame(auth, hello);
      out_.insert(0, hello);
    }
    ReadMore(generation);
    Flush();
  }

  // Closes the socket and fails every request in flight with `status` (or the server's refusal).
  void Disconnect(Status status) {
    ++generation_;
    state_ = State::kDisconnected;
    error_code ignored;
    if (stream_) SocketOf(*stream_).close(ignored);
    writing_ = false;
    out_.clear();
    // A fresh buffer: the one the last read was given stays with that read's callback, since a TLS
    // read can still copy bytes it already received into it after the close.
    in_ = std::make_shared<ReadBuffer>();
    if (!refusal_.ok()) status = refusal_;
    auto pending = std::move(pending_);
    pending_.clear();
    for (auto& [id, p] : pending) p.reply(status);
  }

  void ReadMore(uint64_t generation) {
    stream_->async_read_some(
        in_->Free(), [self = this->shared_from_this(), generation, stream = stream_, in = in_](
                         const error_code& ec, size_t n) {
          if (generation != self->generation_) return;
          if (ec) {
            self->Disconnect(Status::Unavailable(
                fmt::format("connection to {} lost: {}", self->url_, ec.message())));
            return;
          }
          self->in_->used += n;
          if (!self->ProcessFrames()) return;
          self->ReadMore(generation);
        });
  }

  // False when the connection was dropped.
  bool ProcessFrames() {
    size_t pos = 0;
    size_t next_frame = 0;
    uint64_t generation = generation_;
    while (true) {
      FrameScan scan = ScanFrame({in_->bytes.data() + pos, in_->used - pos}, options_.ReplyLimit());
      if (scan.kind == FrameScan::Kind::kTooLarge) {
        Disconnect(Status::Unavailable(fmt::format("{} sent a frame of {} bytes (limit {})", url_,
                                                   scan.size, options_.ReplyLimit())));
        return false;
      }
      if (scan.kind == FrameScan::Kind::kPartial) {
        next_frame = scan.size;
        break;
      }
      HandleReply(scan.body);
      if (generation != generation_) return false;  // a reply callback closed us
      pos += scan.size;
    }
    in_->Consume(pos, next_frame);
    return true;
  }

  void HandleReply(std::string_view frame) {
    CodecLimits limits;
    limits.max_bytes = options_.ReplyLimit();
    auto parsed = ParseMessage(frame, limits);
    if (!parsed.ok()) {
      spdlog::warn("tcp client of {}: unreadable reply: {}", url_, parsed.status().ToString());
      return;
    }
    Message message = std::move(parsed).value();
    auto it = pending_.find(message.meta().id);
    if (it == pending_.end()) {
      if (message.Has("auth$")) return;
      if (message.Has("error$")) {
        // A refusal of the connection itself (frame too large, bad frame): kept for the disconnect.
        auto status = FromWire(std::move(message));
        if (!status.ok()) refusal_ = status.status();
      }
      return;
    }
    Pending pending = std::move(it->second);
    pending_.erase(it);
    if (closed_ && pending_.empty()) {
      // The last reply of a closed client: answer it after closing (the caller may not re-enter).
      asio::post(strand_, [self = this->shared_from_this()] { self->CloseIfDone(); });
    }
    if (message.Has("error$")) {
      auto result = FromWire(std::move(message));
      if (!result.ok() && HttpStatusFor(result.status()) == 401) refusal_ = result.status();
      pending.reply(std::move(result));
      return;
    }
    message.meta() = Meta{};
    message.meta().id = std::move(pending.original_id);
    pending.reply(std::move(message));
  }

  void Flush() {
    if (writing_ || out_.empty() || state_ != State::kConnected) return;
    writing_ = true;
    auto buffer = std::make_shared<std::string>(std::move(out_));
    out_.clear();
    uint64_t generation = generation_;
    asio::async_write(*stream_, asio::buffer(*buffer),
                      [self = this->shared_from_this(), buffer, generation, stream = stream_](
                          const error_code& ec, size_t) { self->OnWritten(generation, ec); });
  }

  void OnWritten(uint64_t generation, const error_code& ec) {
    if (generation != generation_) return;
    writing_ = false;
    if (ec) {
      Disconnect(Status::Unavailable(fmt::format("write to {} failed: {}", url_, ec.message())));
      return;
    }
    Flush();
  }

  void ArmSweep() {
    if (sweep_armed_) return;
    sweep_armed_ = true;
    sweep_.expires_after(kSweepInterval);
    sweep_.async_wait([self = this->shared_from_this()](const error_code& ec) {
      self->sweep_armed_ = false;
      if (ec) return;
      self->Sweep();
      self->CloseIfDone();
      if (!self->pending_.empty()) self->ArmSweep();
    });
  }

  void Sweep() {
    int64_t now = NowMs();
    if (state_ == State::kConnecting && now - connect_started_ms_ > options_.timeout.count()) {
      Disconnect(Status::Unavailable(fmt::format("cannot connect to {}: no answer within {} ms",
                                                 url_, options_.timeout.count())));
      return;
    }
    std::vector<ReplyFn> expired;
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.deadline < now) {
        expired.push_back(std::move(it->second.reply));
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& reply : expired)
      reply(Status::Timeout(fmt::format("no reply from {} in time", url_)));
  }

  enum class State { kDisconnected, kConnecting, kConnected };

  asio::strand<asio::io_context::executor_type> strand_;
  std::shared_ptr<Stream> stream_;  // made on Connect
  asio::steady_timer sweep_;
  const Endpoint endpoint_;
  const std::string url_;
  const ClientOptions options_;
  const std::string id_prefix_;
  const std::shared_ptr<SslContext> tls_;  // tls:// only
  uint64_t next_id_ = 1;
  State state_ = State::kDisconnected;
  uint64_t generation_ = 0;  // bumps on every (dis)connect; stale callbacks compare and return
  int64_t connect_started_ms_ = 0;
  Status refusal_;  // an error the server sent without an id before closing
  std::string out_;
  bool writing_ = false;
  bool sweep_armed_ = false;
  bool closed_ = false;
  std::shared_ptr<ReadBuffer> in_ = std::make_shared<ReadBuffer>();  // see Disconnect
  std::unordered_map<std::string, Pending> pending_;
};

template <typename Stream>
class TcpClient final : public Handler {
 public:
  TcpClient(IoRuntime& runtime, const Endpoint& endpoint, const ClientOptions& options,
            std::shared_ptr<SslContext> tls) {
    static std::atomic<uint64_t> clients{1};
    uint64_t client = clients.fetch_add(1);
    int n = std::max(1, options.connections);
    for (int i = 0; i < n; ++i) {
      connections_.push_back(std::make_shared<ClientConnection<Stream>>(
          runtime.impl().ForConnection(), endpoint, options, fmt::format("c{:x}.{:x}-", client, i),
          tls));
    }
  }
  ~TcpClient() override {
    for (auto& connection : connections_) connection->Close();
  }

  void Handle(Message message, const Context&, ReplyFn reply) override {
    size_t i = next_.fetch_add(1, std::memory_order_relaxed) % connections_.size();
    connections_[i]->Send(std::move(message), std::move(reply));
  }

 private:
  std::vector<std::shared_ptr<ClientConnection<Stream>>> connections_;
  std::atomic<size_t> next_{0};
};

}  // namespace

Result<std::shared_ptr<Handler>> MakeTcpClient(IoRuntime& runtime, const Endpoint& endpoint,
                                               ClientOptions options) {
  std::shared_ptr<Handler> client;
  if (!endpoint.tls) {
    client = std::make_shared<TcpClient<tcp::socket>>(runtime, endpoint, options, nullptr);
    return client;
  }
  auto tls = MakeClientTlsContext(options);
  if (!tls.ok()) return tls.status();
  client = std::make_shared<TcpClient<TlsStream>>(runtime, endpoint, options, *tls);
  return client;
}

}  // namespace shardkit::services
