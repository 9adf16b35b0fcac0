#include "connection.h"

#include <algorithm>

#include "cairn/common/logging.h"
#include "cairn/common/strings.h"

namespace cairn::net::internal {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
// Cap on buffers per gather-write; Linux's IOV_MAX is 1024.
constexpr size_t kMaxBuffersPerWrite = 256;

}  // namespace

std::string RemoteAddress(const boost::asio::ip::tcp::socket& socket) {
  boost::system::error_code error;
  auto endpoint = socket.remote_endpoint(error);
  if (error) return "unknown";
  HostPort host_port{endpoint.address().to_string(), endpoint.port()};
  return host_port.ToString();
}

Connection::Connection(boost::asio::ip::tcp::socket socket, std::string peer, size_t max_frame_size,
                       size_t max_queued_bytes, Callbacks callbacks)
    : peer_(std::move(peer)),
      max_frame_size_(max_frame_size),
      max_queued_bytes_(max_queued_bytes),
      callbacks_(std::move(callbacks)),
      socket_(std::move(socket)),
      read_buffer_(kReadChunk),
      decoder_(max_frame_size) {
  boost::system::error_code ignored;
  // Raft heartbeats and small RPCs must not wait for Nagle.
  socket_.set_option(boost::asio::ip::tcp::no_delay(true), ignored);
}

void Connection::Start() {
  std::lock_guard lock(mu_);
  if (!closed_) ReadMore();
}

bool Connection::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

void Connection::ReadMore() {
  socket_.async_read_some(boost::asio::buffer(read_buffer_),
                          [self = shared_from_this()](boost::system::error_code error, size_t bytes) {
                            self->OnRead(error, bytes);
                          });
}

void Connection::OnRead(boost::system::error_code error, size_t bytes) {
  if (error) {
    if (error == boost::asio::error::eof) {
      Close(UnavailableError("connection closed by " + peer_));
    } else {
      Close(UnavailableError("read from " + peer_ + ": " + error.message()));
    }
    return;
  }
  decoder_.Feed(read_buffer_.data(), bytes);
  while (true) {
    auto next = decoder_.Next();
    if (!next.ok()) {
      log::Warn("net.bad_frame", "peer", peer_, "error", next.status());
      Close(next.status().WithContext("bad frame from " + peer_));
      return;
    }
    if (!next->has_value()) break;
    if (closed()) return;
    callbacks_.on_frame(*this, std::move(**next));
  }
  std::lock_guard lock(mu_);
  if (!closed_) ReadMore();
}

Status Connection::Write(std::string encoded) {
  std::lock_guard lock(mu_);
  if (closed_) return UnavailableError("connection to " + peer_ + " is closed");
  if (max_queued_bytes_ != 0 && unwritten_bytes_ + encoded.size() > max_queued_bytes_) {
    return ResourceExhaustedError("send backlog to " + peer_ + " is full (" + std::to_string(unwritten_bytes_) +
                                  " bytes not yet written)");
  }
  unwritten_bytes_ += encoded.size();
  queued_.push_back(std::move(encoded));
  if (!writing_) StartWriteLocked();
  return Status::Ok();
}

Status Connection::WriteFrame(const proto::Frame& frame) {
  std::string encoded;
  CAIRN_RETURN_IF_ERROR(AppendEncodedFrame(frame, &encoded, max_frame_size_));
  return Write(std::move(encoded));
}

void Connection::StartWriteLocked() {
  if (in_flight_.empty()) {
    if (queued_.empty()) {
      writing_ = false;
      return;
    }
    in_flight_.swap(queued_);
    in_flight_offset_ = 0;
  }
  buffers_.clear();
  for (size_t i = 0; i < in_flight_.size() && buffers_.size() < kMaxBuffersPerWrite; ++i) {
    size_t skip = i == 0 ? in_flight_offset_ : 0;
    buffers_.push_back(boost::asio::buffer(in_flight_[i]) + skip);
  }
  writing_ = true;
  socket_.async_write_some(buffers_, [self = shared_from_this()](boost::system::error_code error, size_t bytes) {
    self->OnWrite(error, bytes);
  });
}

void Connection::ConsumeWritten(size_t bytes) {
  unwritten_bytes_ -= std::min(bytes, unwritten_bytes_);
  while (bytes > 0 && !in_flight_.empty()) {
    size_t left = in_flight_.front().size() - in_flight_offset_;
    if (bytes < left) {
      in_flight_offset_ += bytes;
      return;
    }
    bytes -= left;
    in_flight_.pop_front();
    in_flight_offset_ = 0;
  }
}

void Connection::OnWrite(boost::system::error_code error, size_t bytes) {
  Status flushed_close;
  {
    std::lock_guard lock(mu_);
    if (!error && !closed_) {
      ConsumeWritten(bytes);
      StartWriteLocked();
      if (writing_ || !close_after_flush_) return;
      flushed_close = flush_close_reason_;
    }
    writing_ = false;
  }
  if (error) {
    Close(UnavailableError("write to " + peer_ + ": " + error.message()));
  } else if (!flushed_close.ok()) {
    Close(flushed_close);
  }
}

void Connection::CloseAfterFlush(const Status& reason) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    if (writing_) {
      close_after_flush_ = true;
      flush_close_reason_ = reason.ok() ? UnavailableError("closed") : reason;
      return;
    }
  }
  Close(reason);
}

void Connection::Close(const Status& reason) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    queued_.clear();
    unwritten_bytes_ = 0;
  }
  callbacks_.on_close(*this, reason);
}

}  // namespace cairn::net::internal
