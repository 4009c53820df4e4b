using System.Text;
using Gateway.Routing;
using Gateway.TestKit;

namespace Gateway.Uplinks.Tests;

/// <summary>The protocol-neutral forwarder against a scripted sink: no network, fake time, the real router and store.</summary>
[Trait("Category", "Unit")]
public sealed class CloudForwarderTests : ForwarderFixture
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task A_stalled_window_is_sent_again_in_order_over_a_new_link()
    {
        Sink.SetUp(Primary, true);
        Sink.MaxUnconfirmed = 4;
        Open();
        await PublishAsync(Numbered(1, 10));
        Start();

        var first = await Sink.NextLinkAsync();
        Assert.Equal(Numbered(1, 4), Bodies(await first.TakeAsync(4))); // the window, never confirmed

        await AdvanceUntilAsync(() => Forwarder.State == LinkState.Stalled, Second, "the link to stall");
        Assert.True(Logged(5005));
        var second = await Sink.NextLinkAsync();
        Assert.Equal(Numbered(1, 4), Bodies(await second.TakeAsync(4))); // what was in flight, first and in order
        Assert.True(first.Disposed);
        Assert.Equal(LinkState.Stalled, Forwarder.State); // until the broker confirms something

        second.ConfirmThrough(3);
        var next = await second.TakeAsync(4);
        second.ConfirmThrough(next[^1].Sequence);
        var last = await second.TakeAsync(2);
        second.ConfirmThrough(last[^1].Sequence);
        Assert.Equal(Numbered(5, 10), Bodies(next).Concat(Bodies(last)));
        await WaitFor.ConditionAsync(() => Unsettled == 0 && Forwarder.Forwarded == 10, "everything to be confirmed");
        Assert.Equal(LinkState.Connected, Forwarder.State);
        Assert.Empty(second.Drain()); // nothing sent twice over the same link
    }

    [Fact]
    public async Task What_was_unconfirmed_when_the_link_went_is_sent_first_and_in_order_after_the_reconnect()
    {
        Sink.SetUp(Primary, true);
        Sink.MaxUnconfirmed = 4;
        Open();
        await PublishAsync(Numbered(1, 12));
        Start();

        var first = await Sink.NextLinkAsync();
        var sent = await first.TakeAsync(4);
        Assert.Equal(Numbered(1, 4), Bodies(sent));
        Assert.True(first.Answer(sent[0].Sequence, PublishResult.Confirmed));
        Assert.True(first.Answer(sent[1].Sequence, PublishResult.Confirmed));
        Assert.Equal(Numbered(5, 6), Bodies(await first.TakeAsync(2))); // the room the two confirmations made
        first.Close("cut");

        var second = await Sink.NextLinkAsync();
        var confirmed = new List<string>(Numbered(1, 2));
        while (confirmed.Count < 12)
        {
            var published = await second.TakeAsync(Math.Min(4, 12 - confirmed.Count));
            confirmed.AddRange(Bodies(published));
            second.ConfirmThrough(published[^1].Sequence);
        }

        Assert.Equal(Numbered(1, 12), confirmed); // every message once, in order
        await WaitFor.ConditionAsync(() => Unsettled == 0, "the buffer to empty");
        Assert.Contains(Logs.Entries, e => e.EventId.Id == 5003 && e.Message.Contains("cut", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_transient_publish_failure_sends_it_and_what_follows_again_over_a_new_link()
    {
        Sink.SetUp(Primary, true);
        Sink.MaxUnconfirmed = 2;
        Open();
        await PublishAsync(Numbered(1, 3));
        Start();

        var first = await Sink.NextLinkAsync();
        var sent = await first.TakeAsync(2);
        Assert.True(first.Answer(sent[1].Sequence, PublishResult.Confirmed)); // confirmed, but behind the head
        Assert.True(first.Answer(sent[0].Sequence, PublishResult.Failed("nack")));

        var second = await Sink.NextLinkAsync();
        var again = await second.TakeAsync(2);
        Assert.Equal(Numbered(1, 2), Bodies(again)); // the failed one first, then what was behind it
        second.ConfirmThrough(again[^1].Sequence);
        var last = await second.TakeAsync(1);
        Assert.Equal(["m3"], Bodies(last));
        second.ConfirmThrough(last[0].Sequence);
        await WaitFor.ConditionAsync(() => Unsettled == 0, "the buffer to empty");
        Assert.Equal(0, Forwarder.CloudRejected);
    }

    [Fact]
    public async Task Endpoints_are_tried_in_order_and_the_link_returns_to_the_primary_when_it_is_back()
    {
        const string Secondary = "mqtt://secondary:1883";
        const string Tertiary = "mqtt://tertiary:1883";
        Sink.SetUp(Tertiary, true);
        Sink.AutoConfirm = true;
        Open(o => o.ReturnToPrimaryInterval = TimeSpan.FromSeconds(60), Primary, Secondary, Tertiary);
        await PublishAsync("m1");
        Start();

        var fallback = await Sink.NextLinkAsync();
        Assert.Equal(Tertiary, fallback.Endpoint);
        Assert.Equal([Primary, Secondary, Tertiary], Sink.Attempts);
        Assert.Equal(["m1"], Bodies(await fallback.TakeAsync(1)));
        await WaitFor.ConditionAsync(() => Unsettled == 0, "m1 to be confirmed");

        Sink.SetUp(Primary, true);
        var back = Task.Run(Sink.NextLinkAsync);
        await AdvanceUntilAsync(() => back.IsCompleted, TimeSpan.FromSeconds(5), "the return to the primary");
        Assert.Equal(Primary, (await back).Endpoint);
        Assert.Equal([Primary, Secondary, Tertiary, Primary], Sink.Attempts);
        Assert.True(Logged(5007));
        Assert.True(fallback.Disposed);

        await PublishAsync("m2");
        Assert.Equal(["m2"], Bodies(await (await back).TakeAsync(1)));
    }

    [Fact]
    public async Task When_no_endpoint_answers_each_round_tries_them_all_in_order_after_a_back_off()
    {
        const string Secondary = "mqtt://secondary:1883";
        Open(o => o.ReconnectDelayMax = TimeSpan.FromSeconds(5), Primary, Secondary);
        Start();

        await AdvanceUntilAsync(() => Sink.Attempts.Count >= 6, TimeSpan.FromMilliseconds(500), "three rounds");
        Assert.Equal([Primary, Secondary, Primary, Secondary, Primary, Secondary], Sink.Attempts.Take(6));
        Assert.Equal(LinkState.Buffering, Forwarder.State);
    }

    [Fact]
    public async Task Refused_credentials_fail_the_link_until_a_connect_gets_through()
    {
        Sink.RefuseCredentials = true;
        Sink.AutoConfirm = true;
        Open();
        await PublishAsync("m1");
        Start();

        await WaitFor.ConditionAsync(() => Forwarder.State == LinkState.Failed, "the link to fail");
        Assert.True(Logged(5010));

        Sink.SetUp(Primary, true);
        var link = Task.Run(Sink.NextLinkAsync);
        await AdvanceUntilAsync(() => link.IsCompleted, TimeSpan.FromMilliseconds(500), "a connect after the back-off");
        Assert.Equal(["m1"], Bodies(await (await link).TakeAsync(1)));
        await WaitFor.ConditionAsync(() => Unsettled == 0, "m1 to be confirmed");
        Assert.Equal(LinkState.Connected, Forwarder.State);
    }

    [Fact]
    public async Task A_rejected_message_stays_in_the_buffer_until_the_dead_letter_queue_takes_it()
    {
        Sink.SetUp(Primary, true);
        Sink.AutoConfirm = true;
        Sink.Answer = body => body == "m1" ? PublishResult.Rejected(FailureKind.Throttled, "QuotaExceeded (0x97)") : null;
        Open();
        await PublishAsync("m1", "m2");

        FreeBytes = 10L * 1024 * 1024; // the dead-letter queue refuses what it is given
        Time.Advance(Second);
        Assert.True(Store.LowOnDisk);
        Start();

        var link = await Sink.NextLinkAsync();
        Assert.Equal(["m1", "m2"], Bodies(await link.TakeAsync(2)));
        await WaitFor.ConditionAsync(() => Logged(5015), "the dead-letter queue to refuse m1");
        var steps = 0;
        await AdvanceUntilAsync(() => ++steps > 10, Second, "ten seconds of tries");
        Assert.Single(Logs.Entries, e => e.EventId.Id == 5015); // said once, not per try
        Assert.Equal(2, Unsettled); // m1 waits, and m2 (confirmed) behind it
        Assert.Equal(0, Forwarder.DeadLetterQueue.ReadyCount);
        Assert.Equal(0, Forwarder.CloudRejected);

        FreeBytes = 500L * 1024 * 1024;
        await AdvanceUntilAsync(() => Unsettled == 0, Second, "m1 to move to the dead-letter queue");
        Assert.Equal(1, Forwarder.DeadLetterQueue.ReadyCount);
        Assert.Equal(1, Forwarder.CloudRejected);
        Assert.Equal(1, Forwarder.Forwarded);
        Assert.True(Logged(5006));

        using var consumer = Forwarder.DeadLetterQueue.AddConsumer(new ConsumerOptions { Prefetch = 1 });
        Assert.True(consumer.TryRead(out var dead));
        Assert.Equal("m1", Encoding.UTF8.GetString(dead.Message.Body.Span));
        var headers = dead.Message.Properties.Headers!;
        Assert.Equal("cloud", headers["x-uplink"]);
        Assert.Equal("remote/sensors.t", headers["x-uplink-topic"]);
        Assert.Equal("QuotaExceeded (0x97)", headers["x-uplink-reason"]);
        Assert.Empty(link.Drain()); // m1 was not sent again
    }

    [Fact]
    public async Task A_dead_letter_queue_deleted_at_run_time_is_declared_again()
    {
        Sink.SetUp(Primary, true);
        Sink.AutoConfirm = true;
        Sink.Answer = _ => PublishResult.Rejected(FailureKind.Invalid, "TopicNameInvalid (0x90)");
        Open();
        Router.DeleteQueue(Forwarder.DeadLetterQueue.Name);
        await PublishAsync("m1");
        Start();

        await WaitFor.ConditionAsync(() => Unsettled == 0, "m1 to be dead-lettered");
        Assert.True(Logged(5016));
        Assert.True(Router.TryGetQueue("uplink.cloud.dead", out var queue));
        Assert.Equal(1, queue.ReadyCount);
    }
}
