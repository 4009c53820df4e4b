using Gateway.Routing;

namespace Gateway.Uplinks;

internal sealed partial class CloudForwarder
{
    private static readonly TimeSpan MinStatusTick = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan MaxStatusTick = TimeSpan.FromSeconds(1);

    private enum SessionEnd
    {
        Lost,
        Stalled,
        ReturnToPrimary,
        Stopping,
    }

    private async Task<SessionEnd> RunSessionAsync(ICloudLink link, UplinkEndpoint endpoint, int index, CancellationToken stopping)
    {
        var window = Math.Min(_options.MaxInFlight, link.MaxUnconfirmed);
        using var session = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        using var sending = CancellationTokenSource.CreateLinkedTokenSource(session.Token);

        _endpoint = endpoint.ToString();
        if (!await link.StartAsync(session.Token))
        {
            Fire(LinkEvent.Unreachable); // past the credentials, but never ready
            return stopping.IsCancellationRequested ? SessionEnd.Stopping : SessionEnd.Lost;
        }

        // Once ready both ways. A grant below MaxInFlight bounds the rate to that many per round
        // trip, which over a WAN is what an operator needs to know.
        UplinkLog.Connected(_logger, Name, _endpoint, window, window < _options.MaxInFlight ? link.MaxUnconfirmedSource : "MaxInFlight");

        var consumer = Queue.AddConsumer(new ConsumerOptions { Prefetch = window, Tag = "uplink:" + Name });
        var publishes = new PublishWindow(this, link, consumer, window, session.Token);
        link.SetConfirmations(publishes);
        _publishes = publishes;
        string? lostReason = null;
        SessionEnd end;
        try
        {
            Fire(LinkEvent.Connected);
            CheckBacklog();
            using var stopSending = sending.Token.Register(publishes.StopSending);
            var pump = PumpAsync(publishes, consumer, session.Token);
            using var stall = CancellationTokenSource.CreateLinkedTokenSource(session.Token);
            var confirm = ConfirmAsync(publishes, link, stall, session.Token);
            var closed = link.Closed;
            var primary = index > 0 ? WatchPrimaryAsync(session.Token) : Task.Delay(Timeout.Infinite, session.Token);
            var status = StatusAsync(stall, session.Token);

            var first = await Task.WhenAny(confirm, closed, primary);
            if (first == primary && !session.IsCancellationRequested && !closed.IsCompleted)
            {
                // Finish what is in flight, then move: no duplicates from a planned switch.
                UplinkLog.ReturningToPrimary(_logger, Name, _primary);
                await sending.CancelAsync();
                await ((Task)Task.WhenAny(confirm, closed)).WaitAsync(_options.StallTimeout, _time, session.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                end = SessionEnd.ReturnToPrimary;
            }
            else if (confirm.IsCompletedSuccessfully && confirm.Result == SessionEnd.Stalled)
            {
                end = SessionEnd.Stalled;
            }
            else
            {
                lostReason = confirm.Exception?.InnerException?.Message;
                lostReason ??= closed.IsCompletedSuccessfully ? closed.Result : "connection closed";
                end = stopping.IsCancellationRequested ? SessionEnd.Stopping : SessionEnd.Lost;
            }

            await session.CancelAsync();
            await Task.WhenAll(pump, confirm, primary, status).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        finally
        {
            // Everything not confirmed goes back to the queue, in order, flagged redelivered.
            await publishes.CloseAsync();
            link.SetConfirmations(null);
            _publishes = null;
            consumer.Dispose();
            Volatile.Write(ref _inFlight, 0);
            Volatile.Write(ref _awaitingSince, 0);
        }

        if (end is SessionEnd.Lost)
        {
            UplinkLog.Lost(_logger, Name, _endpoint, lostReason ?? "closed", Queue.ReadyCount);
        }

        Fire(LinkEvent.Lost);
        return end;
    }

    // Wakes the window when messages arrive while it has room and nothing to send; with the
    // window full, the broker's acknowledgements drive the sends.
    private static async Task PumpAsync(PublishWindow publishes, QueueConsumer consumer, CancellationToken cancellationToken)
    {
        try
        {
            while (await publishes.WaitStarvedAsync(cancellationToken))
            {
                if (!await consumer.WaitToReadAsync(cancellationToken))
                {
                    publishes.StopSending(); // the queue is gone
                    return;
                }

                publishes.Drive();
            }
        }
        catch (OperationCanceledException)
        {
            // Session over.
        }
    }

    // Returns Stalled when the oldest publish waits past the bound (StatusAsync watches it and
    // cancels `stall`: no timer per message), Lost when the connection or a send fails, or when
    // sending was stopped and everything in flight is confirmed.
    private async Task<SessionEnd> ConfirmAsync(PublishWindow publishes, ICloudLink link, CancellationTokenSource stall, CancellationToken cancellationToken)
    {
        try
        {
            return await publishes.Completion.WaitAsync(stall.Token);
        }
        catch (OperationCanceledException) when (stall.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            UplinkLog.Stalled(_logger, Name, _endpoint ?? "?", _options.StallTimeout.TotalSeconds, InFlight);
            Fire(LinkEvent.Stalled);
            return SessionEnd.Stalled;
        }
        catch (OperationCanceledException)
        {
            return SessionEnd.Lost;
        }
        catch (Exception ex) when (link.IsLinkLoss(ex))
        {
            return SessionEnd.Lost; // the connection went with publishes in flight
        }
    }

    // Completes once the primary endpoint is reachable again.
    private async Task WatchPrimaryAsync(CancellationToken cancellationToken)
    {
        var primary = _endpoints[0];
        do
        {
            await Task.Delay(_options.ReturnToPrimaryInterval, _time, cancellationToken);
        }
        while (!await _sink.IsReachableAsync(primary, cancellationToken));
    }

    // Publishes state, and ends a session whose oldest publish has waited past StallTimeout.
    private async Task StatusAsync(CancellationTokenSource stall, CancellationToken cancellationToken)
    {
        var tick = _options.StallTimeout / 4;
        tick = tick < MinStatusTick ? MinStatusTick : tick > MaxStatusTick ? MaxStatusTick : tick;
        using var timer = new PeriodicTimer(tick, _time);
        var sinceState = TimeSpan.Zero;
        while (await timer.WaitForNextTickAsync(cancellationToken))
        {
            var since = Volatile.Read(ref _awaitingSince);
            if (since != 0 && _time.GetElapsedTime(since) >= _options.StallTimeout)
            {
                await stall.CancelAsync();
            }

            sinceState += tick;
            if (sinceState >= MaxStatusTick)
            {
                sinceState = TimeSpan.Zero;
                CheckBacklog();
            }
        }
    }
}
