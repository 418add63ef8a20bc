#include "adapters/notify/http_notifier.h"

#include <algorithm>
#include <random>
#include <utility>

#include "adapters/aws/http_client.h"
#include "adapters/crypto/hmac.h"

namespace intermission::adapters {

bool NotifyTarget::wants(const core::Notice& notice) const {
  return (kinds.empty() || kinds.contains(notice.kind)) &&
         (environments.empty() || environments.contains(notice.environment));
}

std::string_view to_string(DeliveryReport::Result result) {
  switch (result) {
    case DeliveryReport::Result::kDelivered: return "delivered";
    case DeliveryReport::Result::kFailed: return "failed";
    case DeliveryReport::Result::kDropped: return "dropped";
  }
  return "unknown";
}

NotifyRequest build_request(const NotifyTarget& target, const core::Notice& notice,
                            std::int64_t unix_seconds) {
  NotifyRequest r;
  r.headers = {"Content-Type: application/json", "User-Agent: intermission"};
  if (target.type == NotifyTarget::Type::kSlack) {
    r.body = core::slack_payload(notice);
    return r;
  }
  r.body = core::webhook_body(notice);
  const std::string timestamp = std::to_string(unix_seconds);
  r.headers.push_back("X-Intermission-Delivery: " + notice.id());
  r.headers.push_back("X-Intermission-Event: " + std::string(core::to_string(notice.kind)));
  r.headers.push_back("X-Intermission-Timestamp: " + timestamp);
  r.headers.push_back("X-Intermission-Signature: sha256=" +
                      hmac_sha256_hex(target.secret, core::webhook_signed_text(timestamp, r.body)));
  return r;
}

HttpNotifier::HttpNotifier(std::vector<NotifyTarget> targets, NotifierOptions options,
                           const core::Clock& clock, Report report)
    : targets_(std::move(targets)),
      options_(options),
      clock_(clock),
      report_(std::move(report)),
      thread_([this] { run(); }) {}

HttpNotifier::~HttpNotifier() {
  {
    const std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void HttpNotifier::finish(Job& job, DeliveryReport::Result result, std::string detail) {
  report_(DeliveryReport{result, targets_[job.target].name, std::move(job.notice), job.attempts,
                         std::move(detail)});
}

void HttpNotifier::notify(const core::Notice& notice) {
  {
    const std::lock_guard lock(mu_);
    if (stop_) return;  // the destructor is running: nobody is left to tell
    for (std::size_t i = 0; i < targets_.size(); ++i) {
      if (!targets_[i].wants(notice)) continue;
      while (!queue_.empty() && queue_.size() >= std::max<std::size_t>(options_.queue, 1)) {
        dropped_.push_back(std::move(queue_.front()));
        dropped_.back().last = "the queue was full (" + std::to_string(options_.queue) +
                               " deliveries waiting); the oldest was dropped";
        queue_.pop_front();
      }
      queue_.push_back(Job{i, notice, 0, "", std::chrono::steady_clock::now()});
    }
  }
  cv_.notify_all();
}

bool HttpNotifier::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout,
                      [this] { return queue_.empty() && dropped_.empty() && !busy_; });
}

void HttpNotifier::run() {
  using steady = std::chrono::steady_clock;
  const auto connect = std::min(options_.timeout, std::chrono::milliseconds(3000));
  aws::HttpClient http(aws::HttpTimeouts{connect, options_.timeout});
  std::mt19937_64 rng(std::random_device{}());
  std::unique_lock lock(mu_);
  for (;;) {
    if (!dropped_.empty()) {
      std::vector<Job> dropped;
      dropped.swap(dropped_);
      busy_ = true;
      lock.unlock();
      for (auto& job : dropped) {
        std::string why = job.last;
        finish(job, DeliveryReport::Result::kDropped, std::move(why));
      }
      lock.lock();
      busy_ = false;
      continue;
    }
    if (stop_) break;
    if (queue_.empty()) {
      cv_.notify_all();  // wait_idle()
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      continue;
    }
    auto next = std::min_element(queue_.begin(), queue_.end(),
                                 [](const Job& a, const Job& b) { return a.due < b.due; });
    if (next->due > steady::now()) {
      const auto due = next->due;
      cv_.wait_until(lock, due);  // woken early by a new job or stop: look again
      continue;
    }
    Job job = std::move(*next);
    queue_.erase(next);
    busy_ = true;
    lock.unlock();

    const NotifyTarget& target = targets_[job.target];
    ++job.attempts;
    const auto request = build_request(target, job.notice, core::to_epoch_ms(clock_.now()) / 1000);
    auto response = http.request("POST", target.url, request.headers, request.body);
    std::optional<long> status;
    std::optional<core::Duration> retry_after;
    if (response) {
      status = response->status;
      job.last = "HTTP " + std::to_string(response->status);
      if (auto h = response->headers.find("retry-after"); h != response->headers.end()) {
        retry_after = core::parse_retry_after(h->second, clock_.now());
      }
    } else {
      job.last = response.error().message;
    }
    const core::DeliveryVerdict verdict = core::classify_delivery(status);
    std::optional<DeliveryReport::Result> done;
    if (verdict == core::DeliveryVerdict::kDelivered) {
      done = DeliveryReport::Result::kDelivered;
    } else if (verdict == core::DeliveryVerdict::kGiveUp || job.attempts >= options_.attempts) {
      done = DeliveryReport::Result::kFailed;
    }
    if (done) {
      std::string detail = job.last;
      if (*done == DeliveryReport::Result::kFailed && verdict == core::DeliveryVerdict::kGiveUp) {
        detail += " (not retried)";
      }
      finish(job, *done, std::move(detail));
      lock.lock();
    } else {
      const auto delay = core::retry_delay(job.attempts, options_.backoff, options_.backoff_cap,
                                           rng(), retry_after);
      job.due = steady::now() + delay;
      lock.lock();
      queue_.push_back(std::move(job));  // at stop, reported dropped below
    }
    busy_ = false;
  }
  // Stopping: what is left is not delivered.
  std::deque<Job> left;
  left.swap(queue_);
  lock.unlock();
  cv_.notify_all();
  for (auto& job : left) {
    finish(job, DeliveryReport::Result::kDropped,
           "shutting down" + (job.last.empty() ? "" : " after " + job.last));
  }
}

}  // namespace intermission::adapters
