import Foundation

/// The task sizes Fargate runs: for each CPU value, the memory sizes it accepts. Any other pair
/// makes `register-task-definition` fail (`No Fargate configuration exists for given values`)
/// halfway through the ecs step, so the configuration loader refuses it first.
///
/// Source: "Task CPU and memory" in the Amazon ECS developer guide,
/// https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size
enum FargateTaskSize {
  /// CPU units (1024 = 1 vCPU) and the memory sizes, in MiB, each accepts.
  static let memoryByCPU: [(cpu: Int, memory: [Int])] = [
    (256, [512, 1024, 2048]),
    (512, Array(stride(from: 1024, through: 4096, by: 1024))),
    (1024, Array(stride(from: 2048, through: 8192, by: 1024))),
    (2048, Array(stride(from: 4096, through: 16384, by: 1024))),
    (4096, Array(stride(from: 8192, through: 30720, by: 1024))),
    (8192, Array(stride(from: 16384, through: 61440, by: 4096))),
    (16384, Array(stride(from: 32768, through: 122880, by: 8192))),
  ]

  /// CPU units from `256` or `0.25 vCPU` (as task definitions accept them).
  static func cpuUnits(_ text: String) -> Int? { units(text, orMultiplesOf: "vcpu") }

  /// MiB from `512` or `0.5 GB` (as task definitions accept them).
  static func memoryMiB(_ text: String) -> Int? { units(text, orMultiplesOf: "gb") }

  /// A whole number, or a number of 1024s followed by `unit` (any case, spaces allowed).
  private static func units(_ text: String, orMultiplesOf unit: String) -> Int? {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    if let whole = Int(trimmed) { return whole }
    let lower = trimmed.lowercased()
    guard lower.hasSuffix(unit),
      let count = Double(lower.dropLast(unit.count).trimmingCharacters(in: .whitespaces))
    else { return nil }
    return Int((count * 1024).rounded())
  }

  /// Why `cpu` and `memory` (the configuration's `ecs.cpu` and `ecs.memory`) are not a Fargate
  /// size, naming the field to change and what it may be; nil when they are one.
  static func problem(cpu: String, memory: String) -> (field: String, message: String)? {
    let cpus = memoryByCPU.map { String($0.cpu) }.joined(separator: ", ")
    guard let units = cpuUnits(cpu), let sizes = memoryByCPU.first(where: { $0.cpu == units })
    else {
      return ("ecs.cpu", "'\(cpu)' is not a Fargate CPU value: use one of \(cpus) (1024 = 1 vCPU)")
    }
    guard let mib = memoryMiB(memory), sizes.memory.contains(mib) else {
      return (
        "ecs.memory",
        "'\(memory)' is not a Fargate memory size for cpu \(units): use one of \(sizes.memory.map(String.init).joined(separator: ", ")) (MiB)"
      )
    }
    return nil
  }
}
