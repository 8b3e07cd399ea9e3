import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// A monthly cost estimate of what steps create, from the price table in `runbooks/prices.json`.
package struct CostEstimate {
  package struct Prices: Decodable {
    package var region: String
    var date: String
    var currency: String
    var note: String
    var hoursPerMonth: Double
    var natGatewayHour: Double
    var publicIPv4Hour: Double
    var loadBalancerHour: Double
    var loadBalancerCapacityUnitHour: Double
    var databaseInstanceHour: [String: Double]
    /// vCPUs of each DB instance class: RDS Extended Support is billed per vCPU-hour.
    var databaseInstanceVCPUs: [String: Double]?
    /// The price of a vCPU-hour of RDS Extended Support in its first, second, third year.
    var extendedSupportVCPUHourByYear: [Double]?
    var databaseStorageGBMonth: Double
    /// RDS backup storage: what a final snapshot costs once its instance is gone.
    var databaseSnapshotGBMonth: Double
    var fargateVCPUHour: Double
    var fargateGBHour: Double
    var fargateSpotSavings: Double
    var secretMonth: Double
  }

  package struct Line {
    var item: String
    var monthly: Double
  }

  var prices: Prices
  var lines: [Line] = []
  var tips: [String] = []

  /// Loads `prices.json` from the configuration's folder; nil when there is none.
  package static func load(for deployment: Deployment) -> Prices? {
    let path = deployment.baseDirectory + "/prices.json"
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    return try? JSONDecoder().decode(Prices.self, from: data)
  }

  /// - Parameters:
  ///   - support: the engine versions' support dates; with it, a version past its end of standard
  ///     support on `today` adds the RDS Extended Support it is billed.
  package init(
    prices: Prices, deployment: Deployment, steps: [String],
    support: EngineSupportCalendar? = nil, today: Date = Date()
  ) {
    self.prices = prices
    if steps.contains("network") {
      lines.append(Line(item: "NAT gateway (1, hourly charge)", monthly: prices.natGatewayMonth))
      lines.append(Line(item: "Elastic IP (public IPv4 address)", monthly: prices.publicIPv4Month))
    }
    if steps.contains("rds") {
      let rds = deployment.rds
      if let monthly = prices.databaseInstanceMonth(rds) {
        lines.append(
          Line(item: "RDS \(rds.instanceClass)\(rds.multiAZ ? " Multi-AZ" : "")", monthly: monthly))
      }
      lines.append(
        Line(
          item: "RDS storage \(rds.allocatedStorageGB) GB\(rds.multiAZ ? " x2 (Multi-AZ)" : "")",
          monthly: prices.databaseStorageMonth(rds)))
      lines.append(Line(item: "RDS-managed master password secret", monthly: prices.secretMonth))
      if let support,
        case .extended(let ended, let year, _) = support.standing(
          rds.engineVersion, on: today)
      {
        let item = "RDS Extended Support (\(rds.engine) \(rds.engineVersion) past \(ended))"
        if let monthly = prices.extendedSupportMonth(rds, year: year) {
          lines.append(Line(item: item, monthly: monthly))
        } else {
          tips.append("\(item): no price for \(rds.instanceClass) in prices.json, not counted")
        }
        if let current = support.versions.last(where: {
          if case .standard = support.standing($0.major, on: today) { true } else { false }
        }) {
          tips.append(
            "\(rds.engine) \(current.major) (rds.engineVersion) is in standard support until \(current.endOfStandardSupport): no Extended Support charge (\(support.source))"
          )
        }
      }
    }
    if steps.contains("secrets") {
      lines.append(Line(item: "Secrets Manager secrets (3)", monthly: 3 * prices.secretMonth))
    }
    var fargate = 0.0
    if steps.contains("ecs") {
      lines.append(
        Line(
          item: "Application Load Balancer (1 capacity unit)", monthly: prices.loadBalancerMonth))
      let ecs = deployment.ecs
      fargate = prices.fargateMonth(tasks: deployment.services.count * ecs.desiredCount, of: ecs)
      lines.append(
        Line(
          item:
            "Fargate: \(deployment.services.count) services x \(deployment.ecs.desiredCount) tasks at \(ecs.taskVCPU) vCPU / \(ecs.taskMemoryGB) GB",
          monthly: fargate))
    }
    if fargate > 0 {
      tips.append(
        String(
          format:
            "Fargate Spot for development and staging: about %.2f %@ a month less (up to %d%%)",
          fargate * prices.fargateSpotSavings, prices.currency, Int(prices.fargateSpotSavings * 100)
        ))
    }
    if steps.contains("network") {
      tips.append(
        "one NAT gateway for both zones (as configured) instead of one per zone saves "
          + String(
            format: "%.2f %@ a month per zone", prices.natGatewayMonth, prices.currency)
          + "; VPC endpoints for ECR, S3, SQS and Secrets Manager cut NAT data processing")
    }
    if steps.contains("ecs") {
      tips.append(
        "CloudWatch Logs retention of 3 days instead of 7 in development (ecs.logRetentionDays) halves stored log volume"
      )
    }
  }

  var total: Double { lines.reduce(0) { $0 + $1.monthly } }

  package func render() -> String {
    guard !lines.isEmpty else { return "" }
    var text =
      "\nestimated monthly cost (\(prices.region), prices of \(prices.date), \(prices.currency)):\n"
    for line in lines {
      text +=
        "  " + line.item.padding(toLength: 58, withPad: " ", startingAt: 0)
        + String(format: "%9.2f\n", line.monthly)
    }
    text +=
      "  " + "total".padding(toLength: 58, withPad: " ", startingAt: 0)
      + String(format: "%9.2f\n", total)
    text += "  (\(prices.note))\n"
    if !tips.isEmpty {
      text += "savings:\n" + tips.map { "  - \($0)\n" }.joined()
    }
    return text
  }
}

// What a month of each kind of resource costs: the one place of the formulas, for the estimate
// before a run and for what a destroy leaves.
extension CostEstimate.Prices {
  var natGatewayMonth: Double { natGatewayHour * hoursPerMonth }

  var publicIPv4Month: Double { publicIPv4Hour * hoursPerMonth }

  /// An Application Load Balancer with one capacity unit.
  var loadBalancerMonth: Double {
    (loadBalancerHour + loadBalancerCapacityUnitHour) * hoursPerMonth
  }

  /// The DB instance, two with Multi-AZ; nil when the table has no price for its class.
  func databaseInstanceMonth(_ rds: Deployment.RDS) -> Double? {
    databaseInstanceHour[rds.instanceClass].map { $0 * Self.copies(rds) * hoursPerMonth }
  }

  /// The DB instance's storage, twice with Multi-AZ.
  func databaseStorageMonth(_ rds: Deployment.RDS) -> Double {
    Double(rds.allocatedStorageGB) * databaseStorageGBMonth * Self.copies(rds)
  }

  /// The final snapshot `destroy` leaves: at most the instance's allocated storage (a snapshot is
  /// billed on the data it holds), with no free backup allowance left once the instance is gone.
  func databaseSnapshotMonth(_ rds: Deployment.RDS) -> Double {
    Double(rds.allocatedStorageGB) * databaseSnapshotGBMonth
  }

  /// `tasks` Fargate tasks of the configured size, running all month.
  func fargateMonth(tasks: Int, of ecs: Deployment.ECS) -> Double {
    Double(tasks) * (ecs.taskVCPU * fargateVCPUHour + ecs.taskMemoryGB * fargateGBHour)
      * hoursPerMonth
  }

  /// RDS Extended Support of the DB instance (two with Multi-AZ) in `year` of it; nil when the
  /// table has no vCPU count for the class or no price.
  func extendedSupportMonth(_ rds: Deployment.RDS, year: Int) -> Double? {
    guard let vCPUs = databaseInstanceVCPUs?[rds.instanceClass],
      let byYear = extendedSupportVCPUHourByYear, let last = byYear.last
    else { return nil }
    let price = year >= 1 && year <= byYear.count ? byYear[year - 1] : last
    return vCPUs * Self.copies(rds) * price * hoursPerMonth
  }

  private static func copies(_ rds: Deployment.RDS) -> Double { rds.multiAZ ? 2 : 1 }
}

extension Deployment.ECS {
  /// A task's vCPUs, as prices count them, from `cpu` (CPU units); a value that is no number
  /// counts as the default.
  var taskVCPU: Double { (Double(cpu) ?? Double(Self.defaultCPUUnits)) / 1024 }

  /// A task's GB of memory, as prices count them, from `memory` (MiB); a value that is no number
  /// counts as the default.
  var taskMemoryGB: Double { (Double(memory) ?? Double(Self.defaultMemoryMiB)) / 1024 }
}
