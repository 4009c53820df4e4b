namespace Gateway.Uplinks;

/// <summary>What came down from the cloud, counted by the sink and read by the metrics.</summary>
internal sealed class DownlinkCounters
{
    private long _delivered;
    private long _tooLarge;
    private long _failed;
    private long _refused;

    /// <summary>Cloud messages delivered locally (downlink rules).</summary>
    public long Delivered => Interlocked.Read(ref _delivered);

    /// <summary>Cloud messages over MaxPacketSize: dropped, and acknowledged to the broker.</summary>
    public long TooLarge => Interlocked.Read(ref _tooLarge);

    /// <summary>Cloud messages the gateway could not deliver locally: not acknowledged, so the broker sends them again after a reconnect.</summary>
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>
    /// Cloud messages a local durable queue refused (full with <c>reject-publish</c>, or the disk
    /// under the free-space reserve): the broker is told where the protocol can say so (MQTT 5:
    /// PUBACK 0x97, quota exceeded); otherwise they are not acknowledged, so the broker sends them
    /// again after a reconnect.
    /// </summary>
    public long Refused => Interlocked.Read(ref _refused);

    public void AddDelivered() => Interlocked.Increment(ref _delivered);

    public void AddTooLarge() => Interlocked.Increment(ref _tooLarge);

    public void AddFailed() => Interlocked.Increment(ref _failed);

    public void AddRefused() => Interlocked.Increment(ref _refused);
}
