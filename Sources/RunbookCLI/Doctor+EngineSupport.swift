import Foundation
import UniSyncRunbook

extension Doctor {
  /// The configured DB engine version against the support dates in `runbooks/` (a local check,
  /// no call): past its end of standard support RDS bills Extended Support for the instance, so
  /// doctor warns, naming the date and where it comes from.
  func engineSupportCheck(_ context: Context, today: Date = Date()) -> DoctorCheck {
    let rds = context.deployment.rds
    let name = "engine version"
    let version = "\(rds.engine) \(rds.engineVersion)"
    guard let calendar = EngineSupportCalendar.load(for: context.deployment) else {
      return DoctorCheck(
        name: name, level: .warn,
        detail:
          "\(version): no support dates (\(EngineSupportCalendar.fileName) is missing or unreadable beside the configuration)",
        fix: "copy runbooks/\(EngineSupportCalendar.fileName) beside the configuration")
    }
    switch calendar.standing(rds.engineVersion, on: today) {
    case .standard(let until):
      return DoctorCheck(
        name: name, level: .ok,
        detail: "\(version): RDS standard support until \(until) (\(calendar.source))", fix: nil)
    case .extended(let ended, let year, let until):
      return DoctorCheck(
        name: name, level: .warn,
        detail:
          "\(version): RDS standard support ended \(ended); a new instance is enrolled in paid RDS Extended Support (year \(year), until \(until)) (\(calendar.source))",
        fix: "set rds.engineVersion to a version in standard support (8.4)")
    case .unsupported(let ended):
      return DoctorCheck(
        name: name, level: .warn,
        detail:
          "\(version): RDS Extended Support ended \(ended); RDS upgrades such an instance (\(calendar.source))",
        fix: "set rds.engineVersion to a version in standard support (8.4)")
    case .unknown:
      return DoctorCheck(
        name: name, level: .warn,
        detail:
          "\(version): not in \(EngineSupportCalendar.fileName), so its support dates are unknown",
        fix: "add its dates from \(calendar.source)")
    }
  }
}
