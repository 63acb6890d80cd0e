// The TCP transport's listener (tcp.h).
#include "tcp.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <optional>
#include <unordered_map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "server.h"
#include "tls_stream.h"
#include "wire.h"

namespace shardkit::services {
namespace {

using error_code = boost::system::error_code;

// --- Server
// ---------------------------------------------------------------------------------------

template <typename Stream>
Stream MakeStream(tcp::socket socket, const std::shared_ptr<ServerTls>& tls) {
  if constexpr (std::is_same_v<Stream, TlsStream>) {
    Stream stream(std::move(socket), *tls->current());
    KeepRecordBuffers(stream.native_handle());
    return stream;
  } else {
    return socket;
  }
}

// One connection of a tcp:// (Stream = tcp::socket) or tls:// (Stream = TlsStream) listener.
template <typename Stream>
class ServerConnection : public std::enable_shared_from_this<ServerConnection<Stream>> {
  using ServerShared = Server<ServerConnection<Stream>>;
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  ServerConnection(tcp::socket socket, std::shared_ptr<ServerShared> shared, uint64_t number)
      : socket_(MakeStream<Stream>(std::move(socket), shared->tls)),
        sweep_(socket_.get_executor()),
        shared_(std::move(shared)),
        number_(number) {}

  ~ServerConnection() { shared_->Forget(number_); }

  void Start() {
    peer_ = ReadyAccepted(SocketOf(socket_));
    if (!RequiresToken(shared_->config)) caller_ = AnonymousCaller(shared_->config, peer_);
    NoteIdle();  // the first frame (and the TLS handshake) is due within read_timeout_ms
    if constexpr (kTls) {
      handshaking_ = true;
      WaitForHello();
    } else {
      ReadMore();
    }
  }

  // Stop reading requests; answer those already read, and those sent but not read yet with
  // `unavailable` "stopping", then close.
  void Drain() {
    asio::dispatch(socket_.get_executor(), [self = this->shared_from_this()] {
      if (self->handshaking_) return self->CloseNow();  // nothing was read from it yet
      if (self->read_closed_ || self->closed_) return;
      self->stopping_ = true;
      self->StopReading();
    });
  }

  // Close once the replies queued so far are written.
  void CloseAfterFlush() {
    asio::dispatch(socket_.get_executor(), [self = this->shared_from_this()] {
      self->close_after_flush_ = true;
      self->read_closed_ = true;
      self->MaybeClose();
    });
  }

 private:
  void WaitForHello() {
    SocketOf(socket_).async_wait(tcp::socket::wait_read,
                                 [self = this->shared_from_this()](const error_code& ec) {
                                   if (ec || self->closed_) return self->CloseNow();
                                   self->Handshake();
                                 });
  }

  // The client's first bytes decide: a TLS handshake, or a plain-text client, told in a plain
  // frame that this port speaks TLS, then closed.
  void Handshake() {
    FirstByte first = PeekFirstByte(SocketOf(socket_));
    if (first == FirstByte::kNothingYet) return WaitForHello();
    if (first == FirstByte::kClosed) return CloseNow();
    if (first == FirstByte::kPlain) {
      std::string refusal;
      AppendFrame(ReplyWire(Status::Invalid(fmt::format("{} speaks TLS: connect with tls://, "
                                                        "not plain text",
                                                        url())),
                            {}),
                  refusal);
      return RefusePlainText(std::move(refusal));
    }
    socket_.async_handshake(asio::ssl::stream_base::server,
                            [self = this->shared_from_this()](const error_code& ec) {
                              self->handshaking_ = false;
                              if (self->closed_) return;
                              if (ec) {
                                self->DropClient(services::Drop::kTlsHandshake,
                                                 fmt::format("TLS handshake: {}", ec.message()));
                                return;
                              }
                              self->ReadMore();
                            });
  }

  // Discards what the client sent (so closing does not reset the connection before the client
  // reads the refusal), writes `refusal` in plain text and closes.
  void RefusePlainText(std::string refusal) {
    spdlog::info("tcp {}: {} sent plain text to a TLS port", url(), peer_);
    shared_->counters->Dropped(services::Drop::kTlsHandshake);
    tcp::socket& socket = SocketOf(socket_);
    error_code ec;
    socket.non_blocking(true, ec);
    char discard[4096];
    for (int i = 0; i < 16 && !ec; ++i) socket.read_some(asio::buffer(discard), ec);  // <= 64 KiB
    auto buffer = std::make_shared<std::string>(std::move(refusal));
    asio::async_write(
        socket, asio::buffer(*buffer),
        [self = this->shared_from_this(), buffer](const error_code&, size_t) { self->CloseNow(); });
  }

  // Bounds what one connection holds: past max_in_flight_per_connection requests, or
  // max_message_bytes of replies not yet written, it is not read until replies go out.
  bool Saturated() const {
    return static_cast<int64_t>(pending_.size()) >= shared_->config.max_in_flight_per_connection ||
           out_.size() + writing_bytes_ >= shared_->config.max_message_bytes;
  }
  void ResumeIfPaused() {
    if (read_paused_ && !Saturated()) ReadMore();
  }

  // The read in progress must end before the socket is read here: cancelled at once, or after
  // the write in progress (cancel would end that too).
  // TLS: the drain's plain read may need to write (a key update), which must not meet a write in
  // progress on the same stream, so it too waits for the write.
  void StopReading() {
    if (!reading_ && !(kTls && writing_)) return FinishDrain();
    if (writing_) return;  // the write's completion calls this again
    error_code ignored;
    SocketOf(socket_).cancel(ignored);  // OnRead finishes the drain
  }

  // Reads what the client has sent so far without waiting; every whole request in it is
  // answered `stopping` (HandleFrame), so none is dropped unanswered.
  void FinishDrain() {
    if (read_closed_ || closed_) return;
    error_code ec;
    SocketOf(socket_).non_blocking(true, ec);
    while (!ec && in_.used < shared_->config.max_message_bytes + kFrameHeaderBytes) {
      size_t n = socket_.read_some(in_.Free(), ec);
      in_.used += n;
    }
    ProcessFrames();
    read_closed_ = true;
    error_code ignored;
    SocketOf(socket_).shutdown(tcp::socket::shutdown_receive, ignored);
    MaybeClose();
  }

  void ReadMore() {
    read_paused_ = false;
    if (read_closed_ || closed_ || stopping_) return;
    if (Saturated()) {
      read_paused_ = true;
      return;
    }
    reading_ = true;
    socket_.async_read_some(
        in_.Free(),
        [self = this->shared_from_this()](const error_code& ec, size_t n) { self->OnRead(ec, n); });
  }

  void OnRead(const error_code& ec, size_t n) {
    reading_ = false;
    if (stopping_ || (shared_->draining.load() && !ec)) {
      stopping_ = true;
      in_.used += n;
      FinishDrain();
      return;
    }
    if (ec) {
      read_closed_ = true;
      MaybeClose();
      return;
    }
    in_.used += n;
    idle_since_ms_ = 0;
    ProcessFrames();
    MaybeClose();
    ReadMore();
  }

  void ProcessFrames() {
    const size_t max = shared_->config.max_message_bytes;
    // One clock reading for the frames of one read: each request's deadline counts from when it
    // was read.
    const int64_t now = NowMs();
    in_batch_ = true;
    size_t pos = 0;
    size_t next_frame = 0;
    while (!close_after_flush_ && !closed_) {
      FrameScan scan = ScanFrame({in_.bytes.data() + pos, in_.used - pos}, max);
      if (scan.kind == FrameScan::Kind::kTooLarge) {
        spdlog::warn("tcp {}: dropping a connection that sent a frame of {} bytes (limit {})",
                     url(), scan.size, max);
        QueueReply(Status::Invalid(
                       fmt::format("frame of {} bytes exceeds the limit of {}", scan.size, max),
                       "{\"http_status\":413}"),
                   {});
        close_after_flush_ = true;
        read_closed_ = true;
        break;
      }
      if (scan.kind == FrameScan::Kind::kPartial) {
        next_frame = scan.size;
        break;
      }
      got_frame_ = true;
      HandleFrame(scan.body, now);
      pos += scan.size;
    }
    if (close_after_flush_) pos = in_.used;
    in_.Consume(pos, next_frame);
    if (in_.used == 0) {
      partial_since_ms_ = 0;
    } else if (pos > 0 || partial_since_ms_ == 0) {
      partial_since_ms_ = now;
      ArmSweepAt(partial_since_ms_ + shared_->config.read_timeout_ms + 1);
    }
    in_batch_ = false;
    Flush();
    NoteIdle();
  }

  void HandleFrame(std::string_view frame, int64_t now_ms) {
    CodecLimits limits;
    limits.max_bytes = shared_->config.max_message_bytes;
    auto parsed = ParseMessage(frame, limits);
    if (!parsed.ok()) {
      QueueReply(parsed.status(), {});
      return;
    }
    Message message = std::move(parsed).value();
    std::string id = message.meta().id;
    if (stopping_) {
      QueueReply(Status::Unavailable("stopping: the node is shutting down and did not start this "
                                     "request; send it again"),
                 id);
      return;
    }
    if (auto token = message.GetString("auth$")) {
      // A listener without tokens answers ok to any; else the token decides the role from now on.
      auto caller =
          RequiresToken(shared_->config) ? Authenticate(shared_->config, *token, peer_) : caller_;
      if (caller) {
        caller_ = std::move(caller);
        QueueReply(Message().SetString("auth$", "ok"), id);
        return;
      }
      caller_.reset();
    }
    if (!caller_) {
      QueueReply(Unauthorized(), id);
      close_after_flush_ = true;
      read_closed_ = true;
      return;
    }
    Status admitted = AdmitIncoming(message, shared_->config, shared_->hooks, *caller_, now_ms);
    if (!admitted.ok()) {
      QueueReply(std::move(admitted), id);
      return;
    }
    uint64_t seq = next_seq_++;
    const int64_t deadline = message.meta().deadline;
    if (Dispatch(std::move(message), seq, id)) return;  // answered inline
    pending_.emplace(seq, Pending{std::move(id), deadline});
    ArmSweepAt(deadline);
  }

  // Hands `message` to the node; true if its reply came back before this returns (then queued).
  // A reply given inline on this thread, within this strand, is taken at once; any other comes
  // through the connection's strand.
  bool Dispatch(Message message, uint64_t seq, const std::string& id) {
    struct Scope {
      explicit Scope(ServerConnection* connection, uint64_t seq, const std::string& id)
          : connection(connection), outer(dispatching_here) {
        connection->dispatching_ = {seq, &id, false};
        dispatching_here = connection;
      }
      ~Scope() {
        connection->dispatching_ = {};
        dispatching_here = outer;
      }
      ServerConnection* connection;
      const ServerConnection* outer;
    } scope(this, seq, id);
    shared_->hooks.dispatch(
        std::move(message), [self = this->shared_from_this(), seq](Result<Message> result) {
          ServerConnection* connection = self.get();
          if (dispatching_here == connection) return connection->OnReply(seq, std::move(result));
          asio::dispatch(connection->socket_.get_executor(),
                         [self = std::move(self), seq, result = std::move(result)]() mutable {
                           self->OnReply(seq, std::move(result));
                         });
        });
    return dispatching_.answered;
  }

  void OnReply(uint64_t seq, Result<Message> result) {
    if (seq == dispatching_.seq) {
      // Answered inline, while HandleFrame dispatches it (an in-memory service): it never
      // waits, so it takes no place in pending_ and no timer. Answered once only, as from pending_.
      if (dispatching_.answered) return;
      dispatching_.answered = true;
      QueueReply(std::move(result), *dispatching_.id);
    } else {
      auto it = pending_.find(seq);
      if (it == pending_.end()) return;  // answered `timeout` already
      std::string id = std::move(it->second.id);
      pending_.erase(it);
      QueueReply(std::move(result), id);
    }
    MaybeClose();
    NoteIdle();
    ResumeIfPaused();
  }

  void QueueReply(Result<Message> result, const std::string& id) {
    if (closed_) return;
    AppendReplyFrame(std::move(result), id, shared_->config.max_reply_bytes, out_);
    if (!in_batch_) Flush();
  }

  void Flush() {
    if (writing_ || out_.empty() || closed_) return;
    writing_ = true;
    auto buffer = std::make_shared<std::string>(std::move(out_));
    out_.clear();
    writing_bytes_ = buffer->size();
    write_started_ms_ = NowMs();
    ArmSweepAt(write_started_ms_ + shared_->config.write_timeout_ms + 1);
    asio::async_write(socket_, asio::buffer(*buffer),
                      [self = this->shared_from_this(), buffer](const error_code& ec, size_t) {
                        self->writing_ = false;
                        self->writing_bytes_ = 0;
                        self->write_started_ms_ = 0;
                        if (ec) {
                          self->CloseNow();
                          return;
                        }
                        if (self->stopping_ && (self->reading_ || kTls)) self->StopReading();
                        self->Flush();
                        self->MaybeClose();
                        self->NoteIdle();
                        self->ResumeIfPaused();
                      });
  }

  // Starts the idle clock when nothing is in flight, unread or unwritten: the connection is
  // closed if it stays so for idle_timeout_ms (read_timeout_ms before its first frame).
  void NoteIdle() {
    if (closed_ || !pending_.empty() || in_.used != 0 || writing_ || !out_.empty()) {
      idle_since_ms_ = 0;
      return;
    }
    if (idle_since_ms_ != 0) return;
    idle_since_ms_ = NowMs();
    ArmSweepAt(idle_since_ms_ + IdleLimitMs() + 1);
  }
  int64_t IdleLimitMs() const {
    return got_frame_ ? shared_->config.idle_timeout_ms : shared_->config.read_timeout_ms;
  }

  void DropClient(services::Drop why, std::string_view what) {
    spdlog::info("tcp {}: dropping the connection of {}: {}", url(), peer_, what);
    shared_->counters->Dropped(why);
    CloseNow();
  }

  void MaybeClose() {
    if (closed_ || writing_ || !out_.empty()) return;
    if (close_after_flush_ || (read_closed_ && pending_.empty())) CloseNow();
  }

  void CloseNow() {
    if (closed_) return;
    closed_ = true;
    error_code ignored;
    SocketOf(socket_).shutdown(tcp::socket::shutdown_both, ignored);
    SocketOf(socket_).close(ignored);
    sweep_.Cancel();
  }

  // The sweep timer is set only while something can expire (a request with a deadline, a frame
  // partly read), for the earliest such time: an idle connection has no timer.
  void ArmSweep() {
    int64_t due =
        partial_since_ms_ != 0 ? partial_since_ms_ + shared_->config.read_timeout_ms + 1 : 0;
    auto earliest = [&due](int64_t at) {
      if (at != 0 && (due == 0 || at < due)) due = at;
    };
    if (idle_since_ms_ != 0) earliest(idle_since_ms_ + IdleLimitMs() + 1);
    if (write_started_ms_ != 0) earliest(write_started_ms_ + shared_->config.write_timeout_ms + 1);
    for (const auto& [seq, pending] : pending_) {
      if (pending.deadline != 0 && (due == 0 || pending.deadline < due)) due = pending.deadline;
    }
    ArmSweepAt(due);
  }
  void ArmSweepAt(int64_t due_ms) {
    if (closed_) return;
    sweep_.ArmAt(due_ms, [self = this->shared_from_this()] {
      if (self->closed_) return;
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
      DropClient(services::Drop::kFrameTimeout, fmt::format("its frame did not arrive within {} ms",
                                                            shared_->config.read_timeout_ms));
      return;
    }
    if (write_started_ms_ != 0 && now - write_started_ms_ > shared_->config.write_timeout_ms) {
      DropClient(services::Drop::kNotReading,
                 fmt::format("it read no reply for {} ms", shared_->config.write_timeout_ms));
      return;
    }
    if (idle_since_ms_ != 0 && now - idle_since_ms_ > IdleLimitMs()) {
      DropClient(got_frame_ ? services::Drop::kIdle : services::Drop::kFirstFrameTimeout,
                 fmt::format("{} for {} ms", got_frame_ ? "idle" : "no request", IdleLimitMs()));
      return;
    }
    MaybeClose();
  }

  const std::string& url() const { return shared_->url; }

  struct Pending {
    std::string id;
    int64_t deadline;
  };
  // The request HandleFrame is handing to the node (seq 0: none): a reply to it that comes back
  // before dispatch returns is queued at once.
  struct Dispatching {
    uint64_t seq = 0;
    const std::string* id = nullptr;
    bool answered = false;
  };

  Stream socket_;
  EarliestTimer sweep_;
  std::shared_ptr<ServerShared> shared_;
  const uint64_t number_;
  ReadBuffer in_;
  std::string out_;
  std::unordered_map<uint64_t, Pending> pending_;
  Dispatching dispatching_;
  // The connection whose Dispatch runs on this thread (inside its strand), if any.
  static inline thread_local const ServerConnection* dispatching_here = nullptr;
  uint64_t next_seq_ = 1;
  int64_t partial_since_ms_ = 0;  // when the incomplete frame in in_ started
  std::string peer_;
  std::optional<Caller> caller_;  // set once authenticated
  int64_t idle_since_ms_ = 0;     // when it became idle (0: busy)
  int64_t write_started_ms_ = 0;  // when the write in progress began (0: none)
  size_t writing_bytes_ = 0;      // the size of the write in progress
  bool got_frame_ = false;
  bool handshaking_ = false;  // tls: not readable until the handshake is done
  bool read_paused_ = false;  // Saturated(): the next read waits for replies to go out
  bool reading_ = false;      // a read is in progress
  bool stopping_ = false;     // draining: requests read from now on are answered `stopping`
  bool writing_ = false;
  bool in_batch_ = false;
  bool read_closed_ = false;
  bool close_after_flush_ = false;
  bool closed_ = false;
};

}  // namespace

Result<std::unique_ptr<Listener>> StartTcpListener(IoRuntime& runtime, const ListenerConfig& config,
                                                   ListenerHooks hooks) {
  IoRuntime::Impl& io = runtime.impl();
  if (config.endpoint.tls)
    return StartServer<ServerConnection<TlsStream>>(io, config, std::move(hooks));
  return StartServer<ServerConnection<tcp::socket>>(io, config, std::move(hooks));
}

}  // namespace shardkit::services
