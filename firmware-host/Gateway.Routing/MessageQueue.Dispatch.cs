namespace Gateway.Routing;

public sealed partial class MessageQueue
{
    private void DispatchLocked(long now, ref List<GatewayMessage>? dead)
    {
        var count = _consumers.Count;
        while (count > 0 && WindowCountLocked > 0)
        {
            QueueConsumer? target = null;
            for (var i = 0; i < count; i++)
            {
                var index = (_nextConsumer + i) % count;
                if (_consumers[index].HasCredit)
                {
                    target = _consumers[index];
                    _nextConsumer = (index + 1) % count;
                    break;
                }
            }

            if (target is null)
            {
                break;
            }

            ExpireHeadLocked(now, ref dead);
            if (WindowCountLocked == 0 || !IsCommittedLocked(PeekHeadLocked().Seq))
            {
                break; // a message leaves a durable queue only once it is on disk
            }

            var entry = DequeueHeadLocked();
            target.DeliverLocked(entry);
            _delivered++;
            if (target.AutoAck)
            {
                _acknowledged++;
                _log?.Remove(Name, entry.Seq);
            }
        }

        SignalFlowLocked(force: false);
        RefillLocked();
    }

    private QueueEntry DequeueHeadLocked()
    {
        var entry = _requeued.Count > 0 ? _requeued.Dequeue() : _ready.Pop();
        _readyBytes -= entry.Message.Body.Length;
        return entry;
    }

    private QueueEntry PeekHeadLocked() => _requeued.TryPeek(out var requeued, out _) ? requeued : _ready.PeekRef();

    // Like RabbitMQ, only the head expires eagerly; a message behind a longer-lived one goes
    // when it reaches the head. With a queue-wide TTL the order is the expiry order anyway.
    private void ExpireHeadLocked(long now, ref List<GatewayMessage>? dead)
    {
        if (!_expiring)
        {
            return;
        }

        while (WindowCountLocked > 0 && PeekHeadLocked().ExpiresAt <= now)
        {
            var entry = DequeueHeadLocked();
            _expired++;
            _log?.Remove(Name, entry.Seq);
            AddDeadLetterLocked(entry.Message, "expired", ref dead);
        }
    }

    private bool WouldOverflowLocked(int bodyLength) =>
        (Arguments.MaxLength is { } maxLength && ReadyCountLocked >= maxLength) ||
        (Arguments.MaxLengthBytes is { } maxBytes && ReadyBytesLocked + bodyLength > maxBytes);

    private void DropHeadOverLimitLocked(ref List<GatewayMessage>? dead)
    {
        while (ReadyCountLocked > 0 &&
            ((Arguments.MaxLength is { } maxLength && ReadyCountLocked > maxLength) ||
             (Arguments.MaxLengthBytes is { } maxBytes && ReadyBytesLocked > maxBytes)))
        {
            _droppedMaxLength++;
            if (WindowCountLocked == 0)
            {
                DropDiskHeadLocked();
                continue;
            }

            var entry = DequeueHeadLocked();
            _log?.Remove(Name, entry.Seq);
            AddDeadLetterLocked(entry.Message, "maxlen", ref dead);
        }
    }

    // Tags are issued in order, so "multiple" settles every outstanding tag up to this one; tag 0
    // means all of them (AMQP 0-9-1 basic.ack). Settled in tag order, and a run of consecutive
    // log offsets leaves the store in one removal.
    private int SettleUpToLocked(QueueConsumer consumer, ulong deliveryTag, Settlement settlement, ref List<GatewayMessage>? dead)
    {
        var unacked = consumer.Unacked;
        var last = deliveryTag == 0 || deliveryTag > consumer.LastTagLocked ? consumer.LastTagLocked : deliveryTag;
        var first = consumer.SettledBelowLocked;
        if (unacked.Count == 0 || last < first)
        {
            return 0;
        }

        var settled = 0;
        var trims = new TrimRun(this);
        if (last - first < (ulong)unacked.Count * 4)
        {
            // The usual case: the range is dense, walk it (no allocation, already in order).
            for (var tag = first; tag <= last; tag++)
            {
                if (unacked.Remove(tag, out var entry))
                {
                    SettleOneLocked(entry, settlement, ref trims, ref dead);
                    settled++;
                }
            }
        }
        else
        {
            List<ulong>? tags = null;
            foreach (var tag in unacked.Keys)
            {
                if (tag <= last)
                {
                    (tags ??= []).Add(tag);
                }
            }

            tags?.Sort();
            foreach (var tag in tags ?? [])
            {
                unacked.Remove(tag, out var entry);
                SettleOneLocked(entry, settlement, ref trims, ref dead);
                settled++;
            }
        }

        trims.Flush();
        consumer.SettledBelowLocked = last + 1;
        return settled;
    }

    private void SettleOneLocked(QueueEntry entry, Settlement settlement, ref TrimRun trims, ref List<GatewayMessage>? dead)
    {
        switch (settlement)
        {
            case Settlement.Ack:
                _acknowledged++;
                trims.Add(entry.Seq);
                break;
            case Settlement.Requeue:
                RequeueLocked(entry with { Redelivered = true });
                break;
            case Settlement.DeadLetter:
                _acknowledged++;
                trims.Add(entry.Seq);
                AddDeadLetterLocked(entry.Message, "rejected", ref dead);
                break;
        }
    }

    // Consecutive offsets settled together, removed from the log as one range.
    private struct TrimRun(MessageQueue queue)
    {
        private long _first;
        private long _last; // 0: empty (offsets start at 1)

        public void Add(long seq)
        {
            if (_last != 0 && seq == _last + 1)
            {
                _last = seq;
                return;
            }

            Flush();
            _first = _last = seq;
        }

        public void Flush()
        {
            if (_last == 0 || queue._log is not { } log)
            {
                return;
            }

            if (_first == _last)
            {
                log.Remove(queue.Name, _first);
            }
            else
            {
                log.RemoveRange(queue.Name, _first, _last);
            }

            _last = 0;
        }
    }

    private void RequeueLocked(QueueEntry entry)
    {
        _requeued.Enqueue(entry, entry.Seq);
        _readyBytes += entry.Message.Body.Length;
    }

    private long ExpiryFor(GatewayMessage message, long now)
    {
        var ttl = Arguments.MessageTtl;
        if (message.Properties.Expiration is { } expiration && (ttl is null || expiration < ttl))
        {
            ttl = expiration;
        }

        if (ttl is not { } value)
        {
            return QueueEntry.Never;
        }

        var ticks = (long)(value.TotalSeconds * _time.TimestampFrequency);
        return ticks >= long.MaxValue - now ? QueueEntry.Never - 1 : now + ticks;
    }

    private void SignalFlowLocked(bool force)
    {
        if (_flowWaiter is not null && (force || ReadyCountLocked <= Options.FlowLimit / 2))
        {
            _flowWaiter.TrySetResult();
            _flowWaiter = null;
        }
    }

    // https://www.rabbitmq.com/docs/dlx: the message is republished to the dead-letter exchange
    // with its original key (or x-dead-letter-routing-key), and x-first-death-* headers say why.
    private void AddDeadLetterLocked(GatewayMessage message, string reason, ref List<GatewayMessage>? dead)
    {
        if (Arguments.DeadLetterExchange is not { } exchange)
        {
            return;
        }

        var original = message.Properties.Headers;
        if (original is not null && original.TryGetValue("x-first-death-queue", out var firstQueue) &&
            firstQueue as string == Name && reason != "rejected")
        {
            // A dead-letter cycle back to this queue with no rejection in it: drop, as RabbitMQ does.
            return;
        }

        var headers = original is null ? new Dictionary<string, object?>(3) : new Dictionary<string, object?>(original);
        headers.TryAdd("x-first-death-reason", reason);
        headers.TryAdd("x-first-death-queue", Name);
        headers.TryAdd("x-first-death-exchange", message.Exchange);
        headers["x-last-death-reason"] = reason;
        headers["x-last-death-queue"] = Name;

        // The expiration applied here already; a dead-lettered copy must not expire again for it.
        var properties = message.Properties with { Headers = headers, Expiration = null };
        _deadLettered++;
        (dead ??= []).Add(message.Readdress(exchange, Arguments.DeadLetterRoutingKey ?? message.RoutingKey, properties));
    }

    private void PublishDeadLetters(List<GatewayMessage>? dead)
    {
        if (dead is null)
        {
            return;
        }

        foreach (var message in dead)
        {
            _router.Route(message);
        }
    }
}
