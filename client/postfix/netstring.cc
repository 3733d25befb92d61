#include "client/postfix/netstring.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace mxpolicy::postfix {
namespace {
// 9 digits: up to 999 999 999, far above any limit, and no overflow.
constexpr int kMaxDigits = 9;
}  // namespace

absl::Status NetstringDecoder::Feed(absl::string_view bytes,
                                    std::vector<Item>& out) {
  auto fail = [this](absl::string_view why) {
    state_ = State::kFailed;
    return absl::InvalidArgumentError(absl::StrCat("malformed netstring: ", why));
  };
  size_t i = 0;
  while (i < bytes.size()) {
    switch (state_) {
      case State::kFailed:
        return absl::InvalidArgumentError("malformed netstring");
      case State::kLength: {
        const char c = bytes[i++];
        if (c >= '0' && c <= '9') {
          if (++digits_ > kMaxDigits) return fail("length has too many digits");
          length_ = length_ * 10 + static_cast<size_t>(c - '0');
          break;
        }
        if (c != ':') return fail("expected a digit or ':'");
        if (digits_ == 0) return fail("empty length");
        oversized_ = length_ > max_payload_;
        left_ = length_;
        payload_.clear();
        if (!oversized_) payload_.reserve(length_);
        state_ = left_ == 0 ? State::kComma : State::kPayload;
        break;
      }
      case State::kPayload: {
        const size_t n = std::min(left_, bytes.size() - i);
        if (!oversized_) payload_.append(bytes.data() + i, n);
        i += n;
        left_ -= n;
        if (left_ == 0) state_ = State::kComma;
        break;
      }
      case State::kComma:
        if (bytes[i++] != ',') return fail("expected ',' after the payload");
        out.push_back(Item{oversized_, oversized_ ? std::string()
                                                  : std::move(payload_)});
        payload_.clear();
        length_ = 0;
        digits_ = 0;
        state_ = State::kLength;
        break;
    }
  }
  return state_ == State::kFailed
             ? absl::InvalidArgumentError("malformed netstring")
             : absl::OkStatus();
}

std::string EncodeNetstring(absl::string_view payload) {
  return absl::StrCat(payload.size(), ":", payload, ",");
}

}  // namespace mxpolicy::postfix
