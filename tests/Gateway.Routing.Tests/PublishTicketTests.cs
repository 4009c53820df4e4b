namespace Gateway.Routing.Tests;

/// <summary>What routing promises a publisher: routed, refused and why, or nowhere to go.</summary>
[Trait("Category", "Unit")]
public sealed class PublishTicketTests : RouterTestBase
{
    [Fact]
    public void A_full_reject_publish_queue_refuses_with_its_reason_and_a_transient_queue_has_nothing_to_wait_for()
    {
        Queue("q", new Dictionary<string, object?> { ["x-max-length"] = 1, ["x-overflow"] = "reject-publish" });

        var first = Router.Publish(Message(string.Empty, "q"));
        var second = Router.Publish(Message(string.Empty, "q"));

        Assert.Equal(RouteStatus.Routed, first.Status);
        Assert.Equal(PublishRefusal.None, first.Refusal);
        Assert.Null(first.Committed);
        Assert.False(first.FlowBlocked);
        Assert.Equal(RouteStatus.Rejected, second.Status);
        Assert.Equal(PublishRefusal.QueueFull, second.Refusal);
        Assert.Equal(1, second.Result.RejectedCount);
    }

    [Fact]
    public void A_message_nothing_is_bound_for_is_unroutable_and_an_unknown_exchange_says_so()
    {
        Assert.Equal(RouteStatus.Unroutable, Router.Publish(Message(MessageRouter.AmqTopic, "nobody.listens")).Status);
        Assert.Equal(RouteStatus.ExchangeNotFound, Router.Publish(Message("no-such-exchange", "k")).Status);
    }

    [Fact]
    public async Task A_queue_over_its_flow_limit_asks_the_publisher_to_pause_until_it_drains()
    {
        var queue = Router.DeclareQueue("flow", new QueueOptions { FlowLimit = 2 });
        using var consumer = queue.AddConsumer(new ConsumerOptions { Prefetch = 1 });

        Assert.False(Router.Publish(Message(string.Empty, "flow", "1")).FlowBlocked); // delivered
        Assert.False(Router.Publish(Message(string.Empty, "flow", "2")).FlowBlocked);
        var blocked = Router.Publish(Message(string.Empty, "flow", "3"));

        Assert.True(blocked.FlowBlocked);
        var paused = blocked.WaitForFlowAsync(CancellationToken.None);
        Assert.False(paused.IsCompleted);
        while (consumer.TryRead(out var delivery))
        {
            consumer.Ack(delivery.DeliveryTag);
        }

        await paused.WaitAsync(TimeSpan.FromSeconds(30));
    }
}
