/// Durations as users write them for Go tools (vault-env, OpenBao, kubectl):
/// a sequence of number+unit pairs such as `30s`, `1m30s`, `1.5h`, `250ms`.
/// A bare number other than 0 is refused, because `--timeout 30` would be
/// ambiguous (seconds? milliseconds?).
public enum DurationText {
    public static func parse(_ text: String) -> Duration? {
        if text == "0" { return .zero }
        let units: [(String, Double)] = [("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600)]
        var rest = Substring(text)
        var seconds = 0.0
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let number = rest.prefix { ($0.isASCIIDigit || $0 == ".") }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { !(($0.isASCIIDigit || $0 == ".")) }
            guard let factor = units.first(where: { $0.0 == unit })?.1 else { return nil }
            rest = rest.dropFirst(unit.count)
            seconds += value * factor
        }
        guard seconds.isFinite, seconds < 1e9 else { return nil }
        return .nanoseconds(Int64((seconds * 1e9).rounded()))
    }

    static func render(_ d: Duration) -> String {
        let ms = d.milliseconds
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (s, atto) = components
        return s * 1000 + atto / 1_000_000_000_000_000
    }
    var seconds: Double { Double(milliseconds) / 1000 }
}
