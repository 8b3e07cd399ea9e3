import Foundation

/// When each major version of the DB engine leaves RDS standard support, from the one table in
/// `runbooks/rds-mysql-support.json` (with the AWS page it was taken from). Past that day RDS
/// enrolls an instance of the version in RDS Extended Support and bills it per vCPU-hour.
package struct EngineSupportCalendar: Decodable, Sendable {
  package struct Version: Decodable, Sendable {
    /// `8.0`: the major version as RDS counts it (X.Y).
    package var major: String
    /// The last day of RDS standard support (`YYYY-MM-DD`).
    package var endOfStandardSupport: String
    /// The last day of RDS Extended Support (`YYYY-MM-DD`).
    package var endOfExtendedSupport: String
  }

  /// Where an engine version stands on a given day.
  package enum Standing: Sendable, Equatable {
    /// In standard support until that day.
    case standard(until: String)
    /// Past standard support (ended that day): `year` of Extended Support (1 from the day after).
    case extended(standardEnded: String, year: Int, until: String)
    /// Past Extended Support too: RDS upgrades such an instance.
    case unsupported(extendedEnded: String)
    /// The table has no row for the version's major version.
    case unknown
  }

  package var engine: String
  /// The AWS page the dates come from.
  package var source: String
  package var versions: [Version]

  /// The file's name, beside the configuration.
  package static let fileName = "rds-mysql-support.json"

  /// Loads the table from the configuration's folder; nil when there is none or it does not read.
  package static func load(for deployment: Deployment) -> EngineSupportCalendar? {
    let path = deployment.baseDirectory + "/" + fileName
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    return try? JSONDecoder().decode(EngineSupportCalendar.self, from: data)
  }

  /// The row of `engineVersion`'s major version: `8.0.39` and `8.0` both read the `8.0` row.
  package func version(_ engineVersion: String) -> Version? {
    let parts = engineVersion.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count >= 2 else { return nil }
    let major = parts[0] + "." + parts[1]
    return versions.first { $0.major == major }
  }

  /// Where `engineVersion` stands on `day` (UTC).
  package func standing(_ engineVersion: String, on day: Date) -> Standing {
    guard let row = version(engineVersion), let standardEnds = Self.day(row.endOfStandardSupport),
      let extendedEnds = Self.day(row.endOfExtendedSupport)
    else { return .unknown }
    let today = Self.calendar.startOfDay(for: day)
    if today <= standardEnds { return .standard(until: row.endOfStandardSupport) }
    if today > extendedEnds { return .unsupported(extendedEnded: row.endOfExtendedSupport) }
    // Years of Extended Support count from the day after standard support ended.
    let days = Self.calendar.dateComponents([.day], from: standardEnds, to: today).day ?? 1
    return .extended(
      standardEnded: row.endOfStandardSupport, year: (days - 1) / 365 + 1,
      until: row.endOfExtendedSupport)
  }

  private static let calendar: Calendar = {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    return calendar
  }()

  /// `YYYY-MM-DD` as the start of that day in UTC.
  static func day(_ text: String) -> Date? {
    let parts = text.split(separator: "-").compactMap { Int($0) }
    guard parts.count == 3 else { return nil }
    return calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2]))
  }
}
