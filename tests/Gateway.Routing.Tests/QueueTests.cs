namespace Gateway.Routing.Tests;

[Trait("Category", "Unit")]
public sealed class QueueTests : RouterTestBase
{
    private void Publish(string queue, params string[] bodies)
    {
        foreach (var body in bodies)
        {
            Router.Route(Message("", queue, body));
        }
    }

    [Fact]
    public void Competing_consumers_get_round_robin_deliveries()
    {
        var q = Queue("work");
        using var a = q.AddConsumer(new ConsumerOptions());
        using var b = q.AddConsumer(new ConsumerOptions());
        using var c = q.AddConsumer(new ConsumerOptions());

        Publish("work", "1", "2", "3", "4", "5", "6");

        Assert.Equal(["1", "4"], ReadAll(a));
        Assert.Equal(["2", "5"], ReadAll(b));
        Assert.Equal(["3", "6"], ReadAll(c));
    }

    [Fact]
    public void Prefetch_bounds_unacknowledged_deliveries()
    {
        var q = Queue("work");
        Publish("work", "1", "2", "3", "4", "5");
        using var consumer = q.AddConsumer(new ConsumerOptions { Prefetch = 2 });

        var first = ReadDeliveries(consumer);
        Assert.Equal(["1", "2"], first.Select(Text));
        Assert.Equal(3, q.ReadyCount);

        consumer.Ack(first[0].DeliveryTag);
        Assert.Equal(["3"], ReadAll(consumer));

        consumer.Ack(first[1].DeliveryTag);
        var next = ReadDeliveries(consumer);
        Assert.Equal(["4"], next.Select(Text));
        Assert.Equal(1, q.ReadyCount);
    }

    [Fact]
    public void Prefetch_sends_the_rest_to_a_consumer_with_room()
    {
        var q = Queue("work");
        using var slow = q.AddConsumer(new ConsumerOptions { Prefetch = 1 });
        using var fast = q.AddConsumer(new ConsumerOptions { Prefetch = 10 });

        Publish("work", "1", "2", "3", "4");

        Assert.Equal(["1"], ReadAll(slow));
        Assert.Equal(["2", "3", "4"], ReadAll(fast));
    }

    [Fact]
    public void Ack_multiple_settles_everything_up_to_the_tag()
    {
        var q = Queue("work");
        Publish("work", "1", "2", "3");
        using var consumer = q.AddConsumer(new ConsumerOptions { Prefetch = 3 });
        var deliveries = ReadDeliveries(consumer);

        consumer.Ack(deliveries[1].DeliveryTag, multiple: true);

        Assert.Equal(1, consumer.UnackedCount);
        Assert.Equal(RoutingException.PreconditionFailed, Assert.Throws<RoutingException>(() => consumer.Ack(deliveries[0].DeliveryTag)).ReplyCode);
    }

    [Fact]
    public void Ack_multiple_after_single_acks_and_requeues_settles_only_what_is_outstanding()
    {
        var q = Queue("work");
        Publish("work", "1", "2", "3", "4", "5", "6", "7", "8");
        using var consumer = q.AddConsumer(new ConsumerOptions { Prefetch = 6 });
        var first = ReadDeliveries(consumer); // 1..6

        consumer.Ack(first[1].DeliveryTag);                                // 2
        consumer.Ack(first[2].DeliveryTag, multiple: true);                // 1, 3
        consumer.Nack(first[4].DeliveryTag, multiple: false, requeue: true); // 5 back to the queue
        consumer.Ack(first[5].DeliveryTag, multiple: true);                // 4, 6

        var next = ReadDeliveries(consumer); // refilled as credit came back: 7, 8, then 5 again; nothing else outstanding
        Assert.Equal(3, consumer.UnackedCount);
        Assert.Equal(["7", "8", "5"], next.Select(Text));
        Assert.True(next[2].Redelivered);
        consumer.Ack(next[1].DeliveryTag, multiple: true); // 7, 8
        Assert.Equal(1, consumer.UnackedCount);
        Assert.Equal(RoutingException.PreconditionFailed, Assert.Throws<RoutingException>(() => consumer.Ack(first[5].DeliveryTag, multiple: true)).ReplyCode);
        consumer.Ack(0, multiple: true);
        Assert.Equal(0, consumer.UnackedCount);
        Assert.Equal(0, q.ReadyCount);
    }

    [Fact]
    public void Ack_multiple_with_tag_zero_settles_everything()
    {
        var q = Queue("work");
        Publish("work", "1", "2", "3");
        using var consumer = q.AddConsumer(new ConsumerOptions { Prefetch = 3 });
        ReadDeliveries(consumer);

        consumer.Ack(0, multiple: true);

        Assert.Equal(0, consumer.UnackedCount);
    }

    [Fact]
    public void Requeued_messages_return_to_their_original_position_flagged_redelivered()
    {
        var q = Queue("work");
        Publish("work", "1", "2", "3", "4");
        using (var consumer = q.AddConsumer(new ConsumerOptions { Prefetch = 2 }))
        {
            var deliveries = ReadDeliveries(consumer);
            consumer.Nack(deliveries[1].DeliveryTag, multiple: false, requeue: true);
            consumer.Nack(deliveries[0].DeliveryTag, multiple: false, requeue: true);
        }

        using var next = q.AddConsumer(new ConsumerOptions { Prefetch = 10 });
        var again = ReadDeliveries(next);

        Assert.Equal(["1", "2", "3", "4"], again.Select(Text));
        Assert.Equal([true, true, false, false], again.Select(d => d.Redelivered));
    }

    [Fact]
    public void Cancelling_a_consumer_requeues_what_it_had_not_acknowledged()
    {
        var q = Queue("work");
        Publish("work", "1", "2", "3");
        var consumer = q.AddConsumer(new ConsumerOptions { Prefetch = 2 });
        var deliveries = ReadDeliveries(consumer);
        consumer.Ack(deliveries[0].DeliveryTag);

        consumer.Dispose();

        Assert.Equal(["2", "3"], Drain(q));
        Assert.True(consumer.Completion.IsCompleted);
    }

    [Fact]
    public void Auto_ack_consumer_buffer_refills_as_it_reads()
    {
        var q = Queue("work");
        using var consumer = q.AddConsumer(new ConsumerOptions { AutoAck = true, Prefetch = 4 });
        Publish("work", Enumerable.Range(1, 10).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray());

        var all = new List<string>();
        while (consumer.TryRead(out var delivery))
        {
            all.Add(Text(delivery));
        }

        Assert.Equal(Enumerable.Range(1, 10).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), all);
        Assert.Equal(0, q.ReadyCount);
    }

    [Fact]
    public void Queue_ttl_expires_waiting_messages_and_dead_letters_them()
    {
        var dead = Queue("dead");
        Queue("short", new Dictionary<string, object?> { ["x-message-ttl"] = 5000, ["x-dead-letter-exchange"] = "", ["x-dead-letter-routing-key"] = "dead" });
        Publish("short", "old");
        Time.Advance(TimeSpan.FromSeconds(3));
        Publish("short", "young");

        Time.Advance(TimeSpan.FromSeconds(2.5)); // the sweeper runs every second

        var expired = Drain(dead);
        Assert.Equal(["old"], expired);
        Assert.Equal(["young"], Drain(Router.GetQueue("short")));
        Assert.Equal(1, Router.GetQueue("short").GetStatistics().Expired);
    }

    [Fact]
    public void Per_message_expiration_applies_and_the_shorter_ttl_wins()
    {
        var q = Queue("q", new Dictionary<string, object?> { ["x-message-ttl"] = 60_000 });
        Router.Route(Message("", "q", "brief", new MessageProperties { Expiration = TimeSpan.FromSeconds(1) }));
        Router.Route(Message("", "q", "lasting"));

        Time.Advance(TimeSpan.FromSeconds(2));

        Assert.Equal(["lasting"], Drain(q));
    }

    [Fact]
    public void Expired_messages_are_not_delivered_to_a_late_consumer()
    {
        var q = Queue("q", new Dictionary<string, object?> { ["x-message-ttl"] = 1000 });
        Publish("q", "stale");
        Time.Advance(TimeSpan.FromMilliseconds(1500));

        Assert.Empty(Drain(q));
    }

    [Fact]
    public void Max_length_drop_head_keeps_the_newest_and_counts_drops()
    {
        var dead = Queue("dead");
        var q = Queue("telemetry", new Dictionary<string, object?> { ["x-max-length"] = 3, ["x-dead-letter-exchange"] = "", ["x-dead-letter-routing-key"] = "dead" });

        Publish("telemetry", "1", "2", "3", "4", "5");

        Assert.Equal(["3", "4", "5"], Drain(q));
        Assert.Equal(2, q.GetStatistics().DroppedMaxLength);
        var deadLetters = ReadDeliveries(dead.AddConsumer(new ConsumerOptions { AutoAck = true }));
        Assert.Equal(["1", "2"], deadLetters.Select(Text));
        Assert.Equal("maxlen", deadLetters[0].Message.Properties.Headers!["x-first-death-reason"]);
    }

    [Fact]
    public void Max_length_reject_publish_refuses_new_messages()
    {
        var q = Queue("bounded", new Dictionary<string, object?> { ["x-max-length"] = 2, ["x-overflow"] = "reject-publish" });

        var results = new[] { "1", "2", "3", "4" }.Select(body => Router.Route(Message("", "bounded", body)).Status).ToList();

        Assert.Equal([RouteStatus.Routed, RouteStatus.Routed, RouteStatus.Rejected, RouteStatus.Rejected], results);
        Assert.Equal(["1", "2"], Drain(q));
        Assert.Equal(2, q.GetStatistics().RejectedMaxLength);
    }

    [Fact]
    public void Max_length_bytes_limits_ready_body_bytes()
    {
        var q = Queue("bytes", new Dictionary<string, object?> { ["x-max-length-bytes"] = 10 });

        Publish("bytes", "aaaa", "bbbb", "cccc");

        Assert.Equal(["bbbb", "cccc"], Drain(q));
    }

    [Fact]
    public void Only_ready_messages_count_toward_max_length()
    {
        var q = Queue("bounded", new Dictionary<string, object?> { ["x-max-length"] = 1, ["x-overflow"] = "reject-publish" });
        using var consumer = q.AddConsumer(new ConsumerOptions { Prefetch = 1 });

        Assert.Equal(RouteStatus.Routed, Router.Route(Message("", "bounded", "delivered")).Status);
        Assert.Equal(RouteStatus.Routed, Router.Route(Message("", "bounded", "ready")).Status);
        Assert.Equal(RouteStatus.Rejected, Router.Route(Message("", "bounded", "refused")).Status);
    }

    [Fact]
    public void Rejected_without_requeue_goes_to_the_dead_letter_exchange_with_its_key()
    {
        Router.DeclareExchange("dlx", ExchangeType.Topic);
        var parked = Queue("parked");
        Router.Bind("dlx", "parked", "orders.#");
        var q = Queue("orders", new Dictionary<string, object?> { ["x-dead-letter-exchange"] = "dlx" });
        Router.Bind("amq.topic", "orders", "orders.*");
        Router.Route(Message("amq.topic", "orders.new", "order-1"));

        using var consumer = q.AddConsumer(new ConsumerOptions());
        var delivery = ReadDeliveries(consumer).Single();
        consumer.Reject(delivery.DeliveryTag, requeue: false);

        var dead = ReadDeliveries(parked.AddConsumer(new ConsumerOptions { AutoAck = true })).Single();
        Assert.Equal("order-1", Text(dead));
        Assert.Equal("dlx", dead.Message.Exchange);
        Assert.Equal("orders.new", dead.Message.RoutingKey);
        Assert.Equal("rejected", dead.Message.Properties.Headers!["x-first-death-reason"]);
        Assert.Equal("orders", dead.Message.Properties.Headers!["x-first-death-queue"]);
        Assert.Equal("amq.topic", dead.Message.Properties.Headers!["x-first-death-exchange"]);
    }

    [Fact]
    public void Invalid_queue_arguments_name_the_argument()
    {
        var error = Assert.Throws<RoutingException>(() => Queue("q", new Dictionary<string, object?> { ["x-max-length"] = -1 }));
        Assert.Equal(RoutingException.PreconditionFailed, error.ReplyCode);
        Assert.Contains("x-max-length", error.Message, StringComparison.Ordinal);

        error = Assert.Throws<RoutingException>(() => Queue("q", new Dictionary<string, object?> { ["x-overflow"] = "drop-tail" }));
        Assert.Contains("x-overflow", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Redeclaring_a_queue_with_other_arguments_fails()
    {
        Queue("q", new Dictionary<string, object?> { ["x-max-length"] = 5 });

        Assert.Same(Router.GetQueue("q"), Queue("q", new Dictionary<string, object?> { ["x-max-length"] = 5 }));
        Assert.Equal(RoutingException.PreconditionFailed, Assert.Throws<RoutingException>(() => Queue("q", new Dictionary<string, object?> { ["x-max-length"] = 6 })).ReplyCode);
    }

    [Fact]
    public void Exclusive_queue_belongs_to_its_owner_and_goes_with_it()
    {
        Router.DeclareQueue("mine", new QueueOptions { Exclusive = true, Owner = "conn-1" });

        Assert.Equal(RoutingException.ResourceLocked, Assert.Throws<RoutingException>(() => Router.DeclareQueue("mine", new QueueOptions { Exclusive = true, Owner = "conn-2" })).ReplyCode);

        Router.ReleaseOwner("conn-1");
        Assert.False(Router.TryGetQueue("mine", out _));
    }

    [Fact]
    public void Auto_delete_queue_goes_with_its_last_consumer()
    {
        var q = Router.DeclareQueue("temp", new QueueOptions { AutoDelete = true });
        var a = q.AddConsumer(new ConsumerOptions());
        var b = q.AddConsumer(new ConsumerOptions());

        a.Dispose();
        Assert.True(Router.TryGetQueue("temp", out _));
        b.Dispose();
        Assert.False(Router.TryGetQueue("temp", out _));
    }

    [Fact]
    public void Server_named_queues_are_unique()
    {
        var a = Router.DeclareQueue("", QueueOptions.Transient);
        var b = Router.DeclareQueue("", QueueOptions.Transient);

        Assert.StartsWith("amq.gen-", a.Name, StringComparison.Ordinal);
        Assert.NotEqual(a.Name, b.Name);
    }

    [Fact]
    public async Task Flow_limited_queue_holds_publishers_until_the_consumer_catches_up()
    {
        var q = Router.DeclareQueue("flow", new QueueOptions { FlowLimit = 4 });
        using var consumer = q.AddConsumer(new ConsumerOptions { AutoAck = true, Prefetch = 1 });
        for (var i = 0; i < 4; i++)
        {
            Assert.True(Router.PublishAsync(Message("", "flow", i.ToString(System.Globalization.CultureInfo.InvariantCulture)), default).AsTask().IsCompleted);
        }

        // One in the consumer's buffer, four ready: the next publish must wait.
        var blocked = Router.PublishAsync(Message("", "flow", "4"), default).AsTask();
        Assert.False(blocked.IsCompleted);

        var received = new List<string>();
        while (!blocked.IsCompleted && consumer.TryRead(out var delivery))
        {
            received.Add(Text(delivery));
        }

        var result = await blocked.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(RouteStatus.Routed, result.Status);
        received.AddRange(ReadAll(consumer));
        Assert.Equal(["0", "1", "2", "3", "4"], received);
    }
}
