namespace Gateway.Uplinks;

/// <summary>Reconnect delays: doubling from 100 ms up to a cap, with jitter so that many gateways do not reconnect in step.</summary>
internal static class ReconnectBackoff
{
    private static readonly TimeSpan Min = TimeSpan.FromMilliseconds(100);

    /// <param name="failures">Consecutive failed rounds, from 1.</param>
    /// <param name="cap">The longest delay (before jitter).</param>
    public static TimeSpan Delay(int failures, TimeSpan cap) => Delay(failures, cap, Random.Shared.NextDouble());

    /// <param name="failures">Consecutive failed rounds, from 1.</param>
    /// <param name="cap">The longest delay (before jitter).</param>
    /// <param name="random">In [0, 1): the delay is between half and all of the capped exponential.</param>
    public static TimeSpan Delay(int failures, TimeSpan cap, double random)
    {
        var exponential = Min * Math.Pow(2, Math.Min(failures - 1, 20));
        var delay = exponential < cap ? exponential : cap;
        return delay * (0.5 + (random * 0.5));
    }
}
