using Gateway.Routing;

namespace Gateway.Uplinks;

internal sealed partial class CloudForwarder
{
    private static readonly TimeSpan DeadLetterRetryMin = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan DeadLetterRetryMax = TimeSpan.FromSeconds(5);

    // On the driver, for the confirmed run at the head of the window.
    private void OnForwarded(int forwarded)
    {
        if (State == LinkState.Stalled)
        {
            Fire(LinkEvent.Confirmed); // stalled until the broker confirms something again
        }

        Interlocked.Add(ref _forwarded, forwarded);
        Interlocked.Exchange(ref _lastConfirmed, _time.GetTimestamp());
    }

    // The message leaves the uplink's queue only once the dead-letter queue has it on disk. While
    // that queue refuses it (the disk under Storage:MinFreeMegabytes, a saturated store), sending
    // waits and this publish is tried again; if the session ends first, the message stays queued.
    private async Task DeadLetterAsync(GatewayMessage message, string reason, CancellationToken cancellationToken)
    {
        var topic = _sink.RemoteAddress(message);
        var headers = message.Properties.Headers is { } original ? new Dictionary<string, object?>(original) : new Dictionary<string, object?>(3);
        headers["x-uplink"] = Name;
        headers["x-uplink-topic"] = topic;
        headers["x-uplink-reason"] = reason;
        var copy = message.Readdress(string.Empty, DeadLetterQueue.Name, message.Properties with { Headers = headers });
        var retry = DeadLetterRetryMin;
        // Not cancelled while the commit is awaited: a message on its way into the dead-letter
        // queue gets there, and is not sent to the broker again after a reconnect.
        while ((await _router.PublishAsync(copy, CancellationToken.None)).Status != RouteStatus.Routed)
        {
            if (!_router.TryGetQueue(DeadLetterQueue.Name, out _) && RedeclareDeadLetterQueue())
            {
                continue; // deleted at run time (through the router): declared again, as at start
            }

            if (retry == DeadLetterRetryMin)
            {
                UplinkLog.DeadLetterRefused(_logger, Name, topic, DeadLetterQueue.Name);
            }

            await Task.Delay(retry, _time, cancellationToken); // the session ending stops the wait; the message stays queued
            retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, DeadLetterRetryMax.Ticks));
        }

        Interlocked.Increment(ref _cloudRejected);
        UplinkLog.Rejected(_logger, Name, topic, reason, DeadLetterQueue.Name);
    }

    private bool RedeclareDeadLetterQueue()
    {
        try
        {
            DeadLetterQueue = _router.DeclareQueue(DeadLetterQueue.Name, DeadLetterQueue.Options);
            UplinkLog.DeadLetterQueueDeclaredAgain(_logger, Name, DeadLetterQueue.Name);
            return true;
        }
        catch (RoutingException)
        {
            return false; // declared meanwhile, with other arguments: the next try goes to it
        }
    }
}
