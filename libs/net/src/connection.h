// Internal: one framed TCP connection shared by Server and Client.
//
// Threading: every public method is thread-safe. All socket operations happen under mu_, so a
// Close() from any thread never races an operation started from a completion handler (that is why
// writes use async_write_some in our own loop instead of the composed async_write). One read is
// outstanding at a time; frames are delivered to on_frame on an io_context thread, in order, with
// no lock held.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio.hpp>

#include "cairn/common/status.h"
#include "cairn/net/frame.h"

namespace cairn::net::internal {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // Both run on an io_context thread (on_close also on the thread that calls Close()). on_close
  // runs exactly once. A frame being delivered while another thread calls Close() may still reach
  // on_frame after on_close; owners tolerate that (the server checks its stopped flag, the client
  // finds no pending call).
  // They are fixed at construction (never reassigned) so they can be read without a lock; capture
  // weak pointers in them to avoid ownership cycles.
  struct Callbacks {
    std::function<void(Connection&, proto::Frame)> on_frame;
    std::function<void(Connection&, const Status&)> on_close;
  };

  // max_queued_bytes bounds the bytes accepted but not yet written (0: unbounded), so a peer that
  // stops reading cannot make us buffer without limit.
  Connection(boost::asio::ip::tcp::socket socket, std::string peer, size_t max_frame_size, size_t max_queued_bytes,
             Callbacks callbacks);

  // Begins the read loop. Call once.
  void Start();

  // Queues an encoded frame (from AppendEncodedFrame). Frames queued while a write is in flight
  // go out together in the next gather-write. Errors: Unavailable when closed, ResourceExhausted
  // when the unwritten backlog would exceed max_queued_bytes.
  Status Write(std::string encoded);
  // Encodes and queues. Unavailable when closed, ResourceExhausted when over the frame limit.
  Status WriteFrame(const proto::Frame& frame);

  // Closes the socket; idempotent. on_close(reason) runs once: inline here when this call is the
  // one that closed it (so do not call it holding a lock on_close takes).
  void Close(const Status& reason);
  // Lets the frames already queued go out, then closes with `reason` (for a last error frame).
  void CloseAfterFlush(const Status& reason);

  bool closed() const;
  const std::string& peer() const { return peer_; }
  size_t max_frame_size() const { return max_frame_size_; }

 private:
  void ReadMore();                                   // REQUIRES: mu_
  void OnRead(boost::system::error_code error, size_t bytes);
  void StartWriteLocked();                           // REQUIRES: mu_
  void OnWrite(boost::system::error_code error, size_t bytes);
  void ConsumeWritten(size_t bytes);                 // REQUIRES: mu_

  const std::string peer_;
  const size_t max_frame_size_;
  const size_t max_queued_bytes_;
  const Callbacks callbacks_;

  mutable std::mutex mu_;
  boost::asio::ip::tcp::socket socket_;              // GUARDED_BY(mu_)
  bool closed_ = false;                              // GUARDED_BY(mu_)
  bool writing_ = false;                             // GUARDED_BY(mu_)
  bool close_after_flush_ = false;                   // GUARDED_BY(mu_)
  Status flush_close_reason_;                        // GUARDED_BY(mu_)
  std::deque<std::string> queued_;                   // GUARDED_BY(mu_): waiting for the next write
  std::deque<std::string> in_flight_;                // GUARDED_BY(mu_): being written
  size_t in_flight_offset_ = 0;                      // GUARDED_BY(mu_): bytes of in_flight_.front() written
  std::vector<boost::asio::const_buffer> buffers_;   // GUARDED_BY(mu_)
  size_t unwritten_bytes_ = 0;                       // GUARDED_BY(mu_): queued_ + rest of in_flight_

  // Touched only by the single outstanding read and its completion, never concurrently.
  std::vector<char> read_buffer_;
  FrameDecoder decoder_;
};

// "127.0.0.1:5000" for a socket's remote end, or "unknown" when it has none.
std::string RemoteAddress(const boost::asio::ip::tcp::socket& socket);

}  // namespace cairn::net::internal
