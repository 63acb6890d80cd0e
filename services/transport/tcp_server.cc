// The TCP transport: length-prefixed JSON frames (wire.h), many requests in flight per connection.
//
// Server: one strand per connection. Each read takes as many bytes as the socket has; every
// complete frame in them is dispatched, and the replies that are ready at once (synchronous
// handlers) are written with one write. Later replies are posted to the strand and batched while a
// write is in progress. A per-connection sweep timer answers `timeout` for requests past their
// deadline and drops a connection whose partial frame has waited longer than read_timeout_ms.
// A frame longer than max_message_bytes cannot be skipped safely: it is answered with an error and
// the connection is closed. A frame that is not a valid message is answered with an error (no id)
// and the connection carries on, since framing is intact.
//
// Client: a pool of connections, each with its own strand; requests are matched to replies by
// meta$.id. A lost connection fails its requests `unavailable`; the next request reconnects.
#include "io.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <cstring>
#include <unordered_map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "server.h"
#include "wire.h"

namespace shardkit::services {
namespace {

using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

constexpr auto kSweepInterval = std::chrono::milliseconds(50);
constexpr size_t kReadChunk = 64 * 1024;

// Receive buffer: bytes [0, used) are data; grows to hold one whole frame when needed.
struct ReadBuffer {
  std::vector<char> bytes = std::vector<char>(kReadChunk);
  size_t used = 0;

  asio::mutable_buffer Free() {
    if (bytes.size() - used < 4096) bytes.resize(std::max(bytes.size() * 2, used + kReadChunk));
    return asio::buffer(bytes.data() + used, bytes.size() - used);
  }
  // Drops [0, consumed), keeps the rest; reserves room for a frame of `next_frame` bytes.
  void Consume(size_t consumed, size_t next_frame) {
    if (consumed > 0) {
      std::memmove(bytes.data(), bytes.data() + consumed, used - consumed);
      used -= consumed;
    }
    size_t want = std::max(kReadChunk, next_frame);
    if (bytes.size() < want) bytes.resize(want);
    if (bytes.size() > 4 * kReadChunk && used < kReadChunk && next_frame <= kReadChunk) {
      bytes.resize(kReadChunk);
      bytes.shrink_to_fit();
    }
  }
};

// --- Server
// ---------------------------------------------------------------------------------------

class ServerConnection;

using ServerShared = Server<ServerConnection>;

class ServerConnection : public std::enable_shared_from_this<ServerConnection> {
 public:
  ServerConnection(tcp::socket socket, std::shared_ptr<ServerShared> shared, uint64_t number)
      : socket_(std::move(socket)),
        sweep_(socket_.get_executor()),
        shared_(std::move(shared)),
        number_(number) {}

  ~ServerConnection() {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->connections.erase(number_);
  }

  void Start() {
    authed_ = shared_->config.token.empty();
    error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    ReadMore();
    ArmSweep();
  }

  // Stop reading requests; answer those already read, then close.
  void Drain() {
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
      if (self->read_closed_ || self->closed_) return;
      self->read_closed_ = true;
      error_code ignored;
      self->socket_.shutdown(tcp::socket::shutdown_receive, ignored);
      self->MaybeClose();
    });
  }

  // Close once the replies queued so far are written.
  void CloseAfterFlush() {
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
      self->close_after_flush_ = true;
      self->read_closed_ = true;
      self->MaybeClose();
    });
  }

 private:
  void ReadMore() {
    if (read_closed_ || closed_) return;
    socket_.async_read_some(
        in_.Free(),
        [self = shared_from_this()](const error_code& ec, size_t n) { self->OnRead(ec, n); });
  }

  void OnRead(const error_code& ec, size_t n) {
    if (ec) {
      read_closed_ = true;
      MaybeClose();
      return;
    }
    in_.used += n;
    ProcessFrames();
    if (shared_->draining.load()) read_closed_ = true;
    MaybeClose();
    ReadMore();
  }

  void ProcessFrames() {
    const size_t max = shared_->config.max_message_bytes;
    in_batch_ = true;
    size_t pos = 0;
    size_t next_frame = 0;
    while (!close_after_flush_ && !closed_ && in_.used - pos >= kFrameHeaderBytes) {
      uint32_t length = ReadFrameLength(in_.bytes.data() + pos);
      if (length > max) {
        spdlog::warn("tcp {}: dropping a connection that sent a frame of {} bytes (limit {})",
                     url(), length, max);
        QueueReply(
            Status::Invalid(fmt::format("frame of {} bytes exceeds the limit of {}", length, max),
                            "{\"http_status\":413}"),
            {});
        close_after_flush_ = true;
        read_closed_ = true;
        break;
      }
      if (in_.used - pos - kFrameHeaderBytes < length) {
        next_frame = kFrameHeaderBytes + length;
        break;
      }
      HandleFrame(std::string_view(in_.bytes.data() + pos + kFrameHeaderBytes, length));
      pos += kFrameHeaderBytes + length;
    }
    if (close_after_flush_) pos = in_.used;
    in_.Consume(pos, next_frame);
    if (in_.used == 0) {
      partial_since_ms_ = 0;
    } else if (pos > 0 || partial_since_ms_ == 0) {
      partial_since_ms_ = NowMs();
    }
    in_batch_ = false;
    Flush();
  }

  void HandleFrame(std::string_view frame) {
    CodecLimits limits;
    limits.max_bytes = shared_->config.max_message_bytes;
    auto parsed = ParseMessage(frame, limits);
    if (!parsed.ok()) {
      QueueReply(parsed.status(), {});
      return;
    }
    Message message = std::move(parsed).value();
    std::string id = message.meta().id;
    if (auto token = message.GetString("auth$")) {
      if (authed_ || TokenMatches(*token, shared_->config.token)) {
        authed_ = true;
        QueueReply(Message().SetString("auth$", "ok"), id);
        return;
      }
    }
    if (!authed_) {
      QueueReply(Unauthorized(), id);
      close_after_flush_ = true;
      read_closed_ = true;
      return;
    }
    Status admitted = AdmitIncoming(message, shared_->config, NowMs());
    if (!admitted.ok()) {
      QueueReply(std::move(admitted), id);
      return;
    }
    uint64_t seq = next_seq_++;
    pending_.emplace(seq, Pending{std::move(id), message.meta().deadline});
    shared_->hooks.dispatch(
        std::move(message), [self = shared_from_this(), seq](Result<Message> result) {
          ServerConnection* connection = self.get();
          asio::dispatch(connection->socket_.get_executor(),
                         [self = std::move(self), seq, result = std::move(result)]() mutable {
                           self->OnReply(seq, std::move(result));
                         });
        });
  }

  void OnReply(uint64_t seq, Result<Message> result) {
    auto it = pending_.find(seq);
    if (it == pending_.end()) return;  // answered `timeout` already
    std::string id = std::move(it->second.id);
    pending_.erase(it);
    QueueReply(std::move(result), id);
    MaybeClose();
  }

  void QueueReply(Result<Message> result, const std::string& id) {
    if (closed_) return;
    AppendFrame(ReplyWire(std::move(result), id), out_);
    if (!in_batch_) Flush();
  }

  void Flush() {
    if (writing_ || out_.empty() || closed_) return;
    writing_ = true;
    auto buffer = std::make_shared<std::string>(std::move(out_));
    out_.clear();
    asio::async_write(socket_, asio::buffer(*buffer),
                      [self = shared_from_this(), buffer](const error_code& ec, size_t) {
                        self->writing_ = false;
                        if (ec) {
                          self->CloseNow();
                          return;
                        }
                        self->Flush();
                        self->MaybeClose();
                      });
  }

  void MaybeClose() {
    if (closed_ || writing_ || !out_.empty()) return;
    if (close_after_flush_ || (read_closed_ && pending_.empty())) CloseNow();
  }

  void CloseNow() {
    if (closed_) return;
    closed_ = true;
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    sweep_.cancel();
  }

  void ArmSweep() {
    sweep_.expires_after(kSweepInterval);
    sweep_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (ec || self->closed_) return;
      self->Sweep();
      self->ArmSweep();
    });
  }

  void Sweep() {
    int64_t now = NowMs();
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.deadline != 0 && it->second.deadline < now) {
        std::string id = std::move(it->second.id);
        it = pending_.erase(it);
        QueueReply(Status::Timeout("no reply before the request's deadline"), id);
      } else {
        ++it;
      }
    }
    if (partial_since_ms_ != 0 && now - partial_since_ms_ > shared_->config.read_timeout_ms) {
      spdlog::warn("tcp {}: dropping a connection whose frame did not arrive within {} ms", url(),
                   shared_->config.read_timeout_ms);
      CloseNow();
      return;
    }
    MaybeClose();
  }

  std::string url() const { return shared_->config.endpoint.ToString(); }

  struct Pending {
    std::string id;
    int64_t deadline;
  };

  tcp::socket socket_;
  asio::steady_timer sweep_;
  std::shared_ptr<ServerShared> shared_;
  const uint64_t number_;
  ReadBuffer in_;
  std::string out_;
  std::unordered_map<uint64_t, Pending> pending_;
  uint64_t next_seq_ = 1;
  int64_t partial_since_ms_ = 0;  // when the incomplete frame in in_ started
  bool authed_ = false;
  bool writing_ = false;
  bool in_batch_ = false;
  bool read_closed_ = false;
  bool close_after_flush_ = false;
  bool closed_ = false;
};

class TcpListener final : public Listener {
 public:
  explicit TcpListener(std::shared_ptr<ServerShared> shared, std::string url)
      : shared_(std::move(shared)), url_(std::move(url)) {}
  ~TcpListener() override {
    StopAccepting();
    Close();
  }

  std::string url() const override { return url_; }

  void StopAccepting() override {
    if (!services::StopAccepting(shared_)) return;
    for (auto& connection : shared_->Snapshot()) connection->Drain();
  }

  void Close() override {
    if (shared_->closing.exchange(true)) return;
    for (auto& connection : shared_->Snapshot()) connection->CloseAfterFlush();
  }

  size_t connections() const override { return shared_->connection_count(); }

 private:
  std::shared_ptr<ServerShared> shared_;
  std::string url_;
};

// --- Client
// ---------------------------------------------------------------------------------------

class ClientConnection : public std::enable_shared_from_this<ClientConnection> {
 public:
  ClientConnection(asio::io_context& io, Endpoint endpoint, ClientOptions options,
                   std::string id_prefix)
      : strand_(asio::make_strand(io)),
        socket_(strand_),
        sweep_(strand_),
        endpoint_(std::move(endpoint)),
        url_(endpoint_.ToString()),
        options_(std::move(options)),
        id_prefix_(std::move(id_prefix)) {}

  void Send(Message message, ReplyFn reply) {
    asio::dispatch(strand_, [self = shared_from_this(), message = std::move(message),
                             reply = std::move(reply)]() mutable {
      self->DoSend(std::move(message), std::move(reply));
    });
  }

  // Refuses new requests; requests in flight still get their replies (or time out), then the
  // connection closes. So a reload that drops a route does not fail requests already sent on it.
  void Close() {
    asio::dispatch(strand_, [self = shared_from_this()] {
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
    error_code ec;
    auto address = asio::ip::make_address(endpoint_.host, ec);
    if (ec) {
      auto resolver = std::make_shared<tcp::resolver>(strand_);
      resolver->async_resolve(
          endpoint_.host, std::to_string(endpoint_.port),
          [self = shared_from_this(), resolver, generation](const error_code& ec,
                                                            tcp::resolver::results_type results) {
            if (generation != self->generation_) return;
            if (ec || results.empty()) {
              self->OnConnect(generation, ec ? ec : asio::error::host_not_found);
              return;
            }
            self->socket_.async_connect(*results.begin(), [self, generation](const error_code& ec) {
              self->OnConnect(generation, ec);
            });
          });
      return;
    }
    socket_.async_connect(tcp::endpoint(address, endpoint_.port),
                          [self = shared_from_this(), generation](const error_code& ec) {
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
    socket_.set_option(tcp::no_delay(true), ignored);
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
    socket_.close(ignored);
    writing_ = false;
    out_.clear();
    in_ = ReadBuffer();
    if (!refusal_.ok()) status = refusal_;
    auto pending = std::move(pending_);
    pending_.clear();
    for (auto& [id, p] : pending) p.reply(status);
  }

  void ReadMore(uint64_t generation) {
    socket_.async_read_some(
        in_.Free(), [self = shared_from_this(), generation](const error_code& ec, size_t n) {
          if (generation != self->generation_) return;
          if (ec) {
            self->Disconnect(Status::Unavailable(
                fmt::format("connection to {} lost: {}", self->url_, ec.message())));
            return;
          }
          self->in_.used += n;
          if (!self->ProcessFrames()) return;
          self->ReadMore(generation);
        });
  }

  // False when the connection was dropped.
  bool ProcessFrames() {
    size_t pos = 0;
    size_t next_frame = 0;
    uint64_t generation = generation_;
    while (in_.used - pos >= kFrameHeaderBytes) {
      uint32_t length = ReadFrameLength(in_.bytes.data() + pos);
      if (length > options_.max_message_bytes + 4096) {
        Disconnect(Status::Unavailable(fmt::format("{} sent a frame of {} bytes (limit {})", url_,
                                                   length, options_.max_message_bytes)));
        return false;
      }
      if (in_.used - pos - kFrameHeaderBytes < length) {
        next_frame = kFrameHeaderBytes + length;
        break;
      }
      HandleReply(std::string_view(in_.bytes.data() + pos + kFrameHeaderBytes, length));
      if (generation != generation_) return false;  // a reply callback closed us
      pos += kFrameHeaderBytes + length;
    }
    in_.Consume(pos, next_frame);
    return true;
  }

  void HandleReply(std::string_view frame) {
    CodecLimits limits;
    limits.max_bytes = options_.max_message_bytes + 4096;
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
      asio::post(strand_, [self = shared_from_this()] { self->CloseIfDone(); });
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
    asio::async_write(
        socket_, asio::buffer(*buffer),
        [self = shared_from_this(), buffer, generation](const error_code& ec, size_t) {
          if (generation != self->generation_) return;
          self->writing_ = false;
          if (ec) {
            self->Disconnect(Status::Unavailable(
                fmt::format("write to {} failed: {}", self->url_, ec.message())));
            return;
          }
          self->Flush();
        });
  }

  void ArmSweep() {
    if (sweep_armed_) return;
    sweep_armed_ = true;
    sweep_.expires_after(kSweepInterval);
    sweep_.async_wait([self = shared_from_this()](const error_code& ec) {
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
  tcp::socket socket_;
  asio::steady_timer sweep_;
  const Endpoint endpoint_;
  const std::string url_;
  const ClientOptions options_;
  const std::string id_prefix_;
  uint64_t next_id_ = 1;
  State state_ = State::kDisconnected;
  uint64_t generation_ = 0;  // bumps on every (dis)connect; stale callbacks compare and return
  int64_t connect_started_ms_ = 0;
  Status refusal_;  // an error the server sent without an id before closing
  std::string out_;
  bool writing_ = false;
  bool sweep_armed_ = false;
  bool closed_ = false;
  ReadBuffer in_;
  std::unordered_map<std::string, Pending> pending_;
};

class TcpClient final : public Handler {
 public:
  TcpClient(IoRuntime& runtime, const Endpoint& endpoint, const ClientOptions& options) {
    static std::atomic<uint64_t> clients{1};
    uint64_t client = clients.fetch_add(1);
    int n = std::max(1, options.connections);
    for (int i = 0; i < n; ++i) {
      connections_.push_back(std::make_shared<ClientConnection>(
          runtime.impl().io, endpoint, options, fmt::format("c{:x}.{:x}-", client, i)));
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
  std::vector<std::shared_ptr<ClientConnection>> connections_;
  std::atomic<size_t> next_{0};
};

}  // namespace

Result<std::unique_ptr<Listener>> StartTcpListener(IoRuntime& runtime, const ListenerConfig& config,
                                                   ListenerHooks hooks) {
  auto shared = std::make_shared<ServerShared>(runtime.impl().io, config, std::move(hooks));
  auto url = Listen(shared);
  if (!url.ok()) return url.status();
  return std::unique_ptr<Listener>(std::make_unique<TcpListener>(shared, *url));
}

std::shared_ptr<Handler> MakeTcpClient(IoRuntime& runtime, const Endpoint& endpoint,
                                       ClientOptions options) {
  return std::make_shared<TcpClient>(runtime, endpoint, options);
}

}  // namespace shardkit::services
