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
  if (max_loss <= 0) max_loss = 1;
  auto x = [&](double step) { return kLeft + plot_w * step / max_step; };
  auto y_loss = [&](double v) { return kTop + plot_h * (1 - v / max_loss); };
  auto y_acc = [&](double v) { return kTop + plot_h * (1 - v); };
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kW << "\" height=\"" << kH
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << kW / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">"
      << Escape(title) << "</text>\n"
      << "<rect x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\"" << plot_w << "\" height=\""
      << plot_h << "\" fill=\"none\" stroke=\"#999\"/>\n";
  for (int i = 0; i <= 4; ++i) {
    const double v = max_loss * i / 4;
    svg << "<text x=\"" << kLeft - 6 << "\" y=\"" << y_loss(v) + 4
        << "\" text-anchor=\"end\" fill=\"#1f77b4\">" << std::round(v * 1000) / 1000 << "</text>\n";
    if (!accuracy.empty()) {
      svg << "<text x=\"" << kW - kRight + 6 << "\" y=\"" << y_acc(i / 4.0) + 4
          << "\" fill=\"#d62728\">" << i * 25 << "%</text>\n";
    }
    svg << "<text x=\"" << x(max_step * i / 4) << "\" y=\"" << kH - kBottom + 18
        << "\" text-anchor=\"middle\">" << static_cast<long>(max_step * i / 4) << "</text>\n";
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
    svg << "<text x=\"" << kW - 6 << "\" y=\"" << kH / 2
        << "\" fill=\"#d62728\" transform=\"rotate(90 " << kW - 6 << " " << kH / 2
        << ")\" text-anchor=\"middle\">test accuracy</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace trainer
