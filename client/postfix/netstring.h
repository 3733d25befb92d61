// Netstrings (<decimal length>:<bytes>,) as Postfix's socketmap client
// speaks them (socketmap_table(5), dict_sockmap.c). The decoder is fed raw
// bytes from a connection as they arrive and yields whole requests; it is
// defensive: a length of more than 9 digits, a non-digit, a missing ':' or
// ',' is malformed (the connection is closed), and a request longer than
// the limit is skipped without being buffered and reported as oversized
// (Postfix ≥ 3.12 turns a too-long query into "not found", SPEC I6).
#ifndef MXPOLICY_CLIENT_POSTFIX_NETSTRING_H_
#define MXPOLICY_CLIENT_POSTFIX_NETSTRING_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace mxpolicy::postfix {

// Contract: not thread-safe (one per connection). After Feed() returned an
// error the decoder stays failed.
class NetstringDecoder {
 public:
  struct Item {
    bool oversized = false;  // payload dropped: longer than the limit
    std::string payload;
  };

  explicit NetstringDecoder(size_t max_payload) : max_payload_(max_payload) {}

  // Consumes `bytes`, appending every request it completes to `out`.
  // INVALID_ARGUMENT (naming the problem) when the stream is malformed.
  absl::Status Feed(absl::string_view bytes, std::vector<Item>& out);

  // True between netstrings (no partial request pending).
  bool idle() const { return state_ == State::kLength && digits_ == 0; }

 private:
  enum class State { kLength, kPayload, kComma, kFailed };
  const size_t max_payload_;
  State state_ = State::kLength;
  size_t length_ = 0;
  int digits_ = 0;
  size_t left_ = 0;        // payload bytes still to come
  bool oversized_ = false;
  std::string payload_;
};

// `payload` framed as a netstring.
std::string EncodeNetstring(absl::string_view payload);

}  // namespace mxpolicy::postfix

#endif  // MXPOLICY_CLIENT_POSTFIX_NETSTRING_H_
