namespace Gateway.Uplinks;

/// <summary>Spaces sends to at most a rate per second (a drain limit for metered links), allowing a burst of up to one second's worth.</summary>
internal sealed class RateLimiter(int perSecond, TimeProvider time)
{
    private readonly long _interval = time.TimestampFrequency / perSecond;
    private long _next = time.GetTimestamp();

    public ValueTask WaitAsync(CancellationToken cancellationToken)
    {
        var now = time.GetTimestamp();
        var earliest = now - time.TimestampFrequency; // unused allowance expires after a second
        if (_next < earliest)
        {
            _next = earliest;
        }

        var at = _next;
        _next += _interval;
        return at <= now ? ValueTask.CompletedTask : new ValueTask(Task.Delay(time.GetElapsedTime(now, at), time, cancellationToken));
    }
}
