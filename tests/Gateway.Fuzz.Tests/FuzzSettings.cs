using System.Globalization;

namespace Gateway.Fuzz.Tests;

/// <summary>
/// The bounded run's knobs: a fixed seed (so a failure replays), a case budget and a time cap.
/// <c>GATEWAY_FUZZ_SEED</c>, <c>GATEWAY_FUZZ_CASES</c>, <c>GATEWAY_FUZZ_SECONDS</c> and
/// <c>GATEWAY_FUZZ_HEAP_GROWTH_MB</c> override them, e.g. for a long run overnight.
/// </summary>
internal sealed record FuzzSettings(int Seed, long MaxCases, TimeSpan Duration, long MaxHeapGrowthBytes)
{
    public const int DefaultSeed = 20_261_208;

    public int BatchSize { get; init; } = 250;

    public TimeSpan CloseTimeout { get; init; } = TimeSpan.FromSeconds(15);

    public static FuzzSettings FromEnvironment() => new(
        (int)Read("GATEWAY_FUZZ_SEED", DefaultSeed),
        Read("GATEWAY_FUZZ_CASES", 50_000),
        TimeSpan.FromSeconds(Read("GATEWAY_FUZZ_SECONDS", 60)),
        Read("GATEWAY_FUZZ_HEAP_GROWTH_MB", 64) * 1024 * 1024);

    private static long Read(string name, long fallback) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } text ? long.Parse(text, CultureInfo.InvariantCulture) : fallback;
}
