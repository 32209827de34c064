#include "runner/attempt_shm.h"

#include <unistd.h>

#include "common/shm_name.h"

namespace runner {

AttemptShmSegment::AttemptShmSegment(const std::vector<WorkerLaunch>& launches,
                                     const std::string& dir) {
  (void)common::RemoveStaleShmSegments(dir);
  if (!launches.empty()) path_ = dir + common::ShmSegmentName(launches.front().contract);
}

AttemptShmSegment::~AttemptShmSegment() {
  if (!path_.empty()) ::unlink(path_.c_str());
}

}  // namespace runner
