#include "trainer/phase_tracker.h"

#include <chrono>
#include <thread>

namespace trainer {

void PhaseTracker::Sleep(double seconds) {
  if (seconds > 0) std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

}  // namespace trainer
