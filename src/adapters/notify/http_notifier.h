// Delivers notices over HTTP (libcurl, through aws::HttpClient) on a thread of its own: a
// bounded queue (full: the oldest delivery is dropped, never the caller blocked), a timeout per
// attempt, retries with jittered exponential backoff (Retry-After honoured up to a cap), and a
// report of each delivery's end for the log, the metrics and the audit trail.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/notice.h"

namespace intermission::adapters {

// One place notices go, ready to send: secrets already read (app/serve_command.cpp).
struct NotifyTarget {
  std::string name;
  enum class Type { kSlack, kWebhook } type = Type::kSlack;
  std::string url;
  std::string secret;                  // webhook: the HMAC key
  std::set<core::NoticeKind> kinds;    // empty = all
  std::set<std::string> environments;  // empty = all
  // Whether this target wants `notice`.
  [[nodiscard]] bool wants(const core::Notice& notice) const;
};

struct NotifierOptions {
  std::chrono::milliseconds timeout{5000};        // per attempt, connect included
  int attempts = 5;                               // per delivery, the first included
  std::chrono::milliseconds backoff{1000};        // the first retry's ceiling; doubles
  std::chrono::milliseconds backoff_cap{60'000};  // also the longest Retry-After honoured
  std::size_t queue = 1000;                       // deliveries waiting (retries included) at most
};

// How a delivery ended.
struct DeliveryReport {
  enum class Result { kDelivered, kFailed, kDropped } result = Result::kDelivered;
  std::string target;
  core::Notice notice;
  int attempts = 0;
  std::string detail;  // "HTTP 200", the last error, or why it was dropped
};
std::string_view to_string(DeliveryReport::Result result);

// The request of one attempt: headers and body. A webhook's signature covers the attempt's
// timestamp (Unix seconds) and the body: X-Intermission-Signature: sha256=<hex HMAC-SHA256(
// secret, "<timestamp>.<body>")>, beside X-Intermission-Timestamp and X-Intermission-Delivery
// (the notice's id).
struct NotifyRequest {
  std::vector<std::string> headers;
  std::string body;
};
NotifyRequest build_request(const NotifyTarget& target, const core::Notice& notice,
                            std::int64_t unix_seconds);

class HttpNotifier final : public core::Notifier {
 public:
  using Report = std::function<void(const DeliveryReport&)>;

  // Starts the delivery thread. `report` is called only on that thread (a delivery dropped
  // from a full queue too), so it may use what that thread alone owns (a store connection);
  // `clock` gives the signing timestamp. Both must outlive the notifier.
  HttpNotifier(std::vector<NotifyTarget> targets, NotifierOptions options, const core::Clock& clock,
               Report report);
  // Stops: an attempt in flight ends (within its timeout), and what is still queued is
  // reported dropped ("shutting down").
  ~HttpNotifier() override;
  HttpNotifier(const HttpNotifier&) = delete;
  HttpNotifier& operator=(const HttpNotifier&) = delete;

  // Queues a delivery to every target that wants `notice`; returns at once.
  void notify(const core::Notice& notice) override;

  // Waits until nothing is queued, in flight or left to report, or until `timeout`; true when
  // idle. For the
  // front ends that exit after one switch (and for tests).
  bool wait_idle(std::chrono::milliseconds timeout);

 private:
  struct Job {
    std::size_t target = 0;
    core::Notice notice;
    int attempts = 0;
    std::string last;  // the last attempt's outcome
    std::chrono::steady_clock::time_point due;
  };
  void run();
  void finish(Job& job, DeliveryReport::Result result, std::string detail);

  std::vector<NotifyTarget> targets_;
  NotifierOptions options_;
  const core::Clock& clock_;
  Report report_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;     // oldest first
  std::vector<Job> dropped_;  // dropped by notify(), reported by the delivery thread
  bool busy_ = false;         // an attempt is in flight
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace intermission::adapters
