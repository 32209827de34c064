#include "trainer/progress.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <sstream>

#include "common/errors.h"
#include "common/job_layout.h"
#include "common/logging.h"

namespace trainer {

namespace {

FILE* OpenAppend(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "a");
  if (f == nullptr) {
    throw common::EnvironmentError("cannot open '" + path + "': " + std::strerror(errno));
  }
  setvbuf(f, nullptr, _IOLBF, 0);  // line-buffered: tail -f shows each line as it is written
  return f;
}

std::string Escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else
      out += c;
  }
  return out;
}

}  // namespace

Progress::Progress(const std::string& dir) {
  if (dir.empty()) return;
  log_ = OpenAppend(dir + "/" + common::job_layout::kTrainLog);
  metrics_ = OpenAppend(dir + "/" + common::job_layout::kMetrics);
}

Progress::~Progress() {
  if (log_ != nullptr) std::fclose(log_);
  if (metrics_ != nullptr) std::fclose(metrics_);
}

void Progress::Line(const std::string& text) {
  const std::string line = common::Timestamp() + " " + text + "\n";
  if (log_ != nullptr) std::fputs(line.c_str(), log_);
  std::fputs(text.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void Progress::Metrics(const std::string& json) {
  if (metrics_ != nullptr) std::fprintf(metrics_, "%s\n", json.c_str());
}

std::string FormatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  } else if (s >= 60) {
    std::snprintf(buf, sizeof(buf), "%ldm%02lds", s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%lds", s);
  }
  return buf;
}

AxisTicks NiceTicks(double max, int max_intervals) {
  if (!std::isfinite(max) || max <= 0) max = 1;
  max_intervals = std::max(max_intervals, 1);
  const double raw = max / max_intervals;
  double power = std::pow(10.0, std::floor(std::log10(raw)));
  AxisTicks ticks;
  // The smallest 1, 2 or 5 times a power of ten that covers `max` in `max_intervals` steps.
  for (;; power *= 10) {
    for (double m : {1.0, 2.0, 5.0}) {
      if (m * power * max_intervals >= max * (1 - 1e-9)) {
        ticks.step = m * power;
        break;
      }
    }
    if (ticks.step > 0) break;
  }
  const auto intervals = static_cast<int>(std::ceil(max / ticks.step - 1e-9));
  for (int i = 0; i <= intervals; ++i) ticks.values.push_back(ticks.step * i);
  ticks.decimals = std::max(0, -static_cast<int>(std::floor(std::log10(ticks.step) + 1e-9)));
  return ticks;
}

std::string FormatTick(double value, int decimals) {
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

std::string LossCurveSvg(const std::vector<CurvePoint>& loss,
                         const std::vector<CurvePoint>& accuracy, const std::string& title) {
  constexpr double kW = 720, kH = 400, kLeft = 60, kRight = 60, kTop = 40, kBottom = 50;
  const double plot_w = kW - kLeft - kRight;
  const double plot_h = kH - kTop - kBottom;
  double max_step = 1, max_loss = 0;
  for (const CurvePoint& p : loss) {
    max_step = std::max(max_step, p.step);
    if (std::isfinite(p.value)) max_loss = std::max(max_loss, p.value);
  }
  for (const CurvePoint& p : accuracy) max_step = std::max(max_step, p.step);
  // Round ticks (1-2-5 steps); each axis ends at its last tick.
  const AxisTicks step_ticks = NiceTicks(max_step, 6);
  const AxisTicks loss_ticks = NiceTicks(max_loss, 5);
  const double step_end = step_ticks.values.back(), loss_end = loss_ticks.values.back();
  auto x = [&](double step) { return kLeft + plot_w * step / step_end; };
  auto y_loss = [&](double v) { return kTop + plot_h * (1 - v / loss_end); };
  auto y_acc = [&](double v) { return kTop + plot_h * (1 - v); };
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kW << "\" height=\"" << kH
      << "\" viewBox=\"0 0 " << kW << " " << kH
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << kW / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">"
      << Escape(title) << "</text>\n"
      << "<rect x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\"" << plot_w << "\" height=\""
      << plot_h << "\" fill=\"none\" stroke=\"#999\"/>\n";
  for (double v : loss_ticks.values) {
    svg << "<text x=\"" << kLeft - 6 << "\" y=\"" << y_loss(v) + 4
        << "\" text-anchor=\"end\" fill=\"#1f77b4\">" << FormatTick(v, loss_ticks.decimals)
        << "</text>\n";
  }
  for (double v : step_ticks.values) {
    svg << "<text x=\"" << x(v) << "\" y=\"" << kH - kBottom + 18 << "\" text-anchor=\"middle\">"
        << FormatTick(v, step_ticks.decimals) << "</text>\n";
  }
  for (int i = 0; !accuracy.empty() && i <= 4; ++i) {
    svg << "<text x=\"" << kW - kRight + 6 << "\" y=\"" << y_acc(i / 4.0) + 4
        << "\" fill=\"#d62728\">" << i * 25 << "%</text>\n";
  }
  svg << "<text x=\"" << kW / 2 << "\" y=\"" << kH - 12
      << "\" text-anchor=\"middle\">optimizer step</text>\n"
      << "<text x=\"16\" y=\"" << kH / 2 << "\" fill=\"#1f77b4\" transform=\"rotate(-90 16 "
      << kH / 2 << ")\" text-anchor=\"middle\">training loss (mean over ranks)</text>\n";
  auto polyline = [&](const std::vector<CurvePoint>& points, auto y, const char* color) {
    svg << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\" points=\"";
    for (const CurvePoint& p : points) {
      if (std::isfinite(p.value)) svg << x(p.step) << "," << y(p.value) << " ";
    }
    svg << "\"/>\n";
  };
  polyline(loss, y_loss, "#1f77b4");
  if (!accuracy.empty()) {
    polyline(accuracy, y_acc, "#d62728");
    for (const CurvePoint& p : accuracy) {
      svg << "<circle cx=\"" << x(p.step) << "\" cy=\"" << y_acc(p.value)
          << "\" r=\"3\" fill=\"#d62728\"/>\n";
    }
    // Turned like the left label (reading upwards): its glyphs rise to the left of x, so all of
    // it stays inside the width (turned the other way they went past the right edge).
    svg << "<text x=\"" << kW - 12 << "\" y=\"" << kH / 2
        << "\" fill=\"#d62728\" transform=\"rotate(-90 " << kW - 12 << " " << kH / 2
        << ")\" text-anchor=\"middle\">test accuracy</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace trainer
