using Gateway.Routing;

namespace Gateway.Uplinks.Tests;

[Trait("Category", "Unit")]
public sealed class LinkStateTableTests
{
    [Theory]
    [InlineData(LinkState.Unknown, nameof(LinkEvent.Opened), LinkState.Buffering)]
    [InlineData(LinkState.Buffering, nameof(LinkEvent.Connected), LinkState.Connected)]
    [InlineData(LinkState.Buffering, nameof(LinkEvent.Unreachable), LinkState.Buffering)]
    [InlineData(LinkState.Connected, nameof(LinkEvent.BacklogHigh), LinkState.Draining)]
    [InlineData(LinkState.Draining, nameof(LinkEvent.BacklogLow), LinkState.Connected)]
    [InlineData(LinkState.Buffering, nameof(LinkEvent.BacklogHigh), LinkState.Buffering)] // draining is a connected state
    [InlineData(LinkState.Connected, nameof(LinkEvent.Lost), LinkState.Buffering)]
    [InlineData(LinkState.Draining, nameof(LinkEvent.Lost), LinkState.Buffering)]
    [InlineData(LinkState.Connected, nameof(LinkEvent.Stalled), LinkState.Stalled)]
    [InlineData(LinkState.Draining, nameof(LinkEvent.Stalled), LinkState.Stalled)]
    [InlineData(LinkState.Stalled, nameof(LinkEvent.Lost), LinkState.Stalled)] // stalled holds through the reconnect…
    [InlineData(LinkState.Stalled, nameof(LinkEvent.Unreachable), LinkState.Stalled)]
    [InlineData(LinkState.Stalled, nameof(LinkEvent.Connected), LinkState.Stalled)]
    [InlineData(LinkState.Stalled, nameof(LinkEvent.BacklogLow), LinkState.Stalled)]
    [InlineData(LinkState.Stalled, nameof(LinkEvent.Confirmed), LinkState.Connected)] // …until the broker confirms something
    [InlineData(LinkState.Failed, nameof(LinkEvent.Lost), LinkState.Failed)]
    [InlineData(LinkState.Failed, nameof(LinkEvent.Unreachable), LinkState.Buffering)] // got past the credentials question
    [InlineData(LinkState.Failed, nameof(LinkEvent.Connected), LinkState.Connected)]
    public void A_state_and_an_event_give_the_next_state(LinkState state, string linkEvent, LinkState expected) =>
        Assert.Equal(expected, LinkStateTable.Next(state, Enum.Parse<LinkEvent>(linkEvent)));

    [Fact]
    public void Every_state_has_a_next_state_for_every_event()
    {
        foreach (var state in Enum.GetValues<LinkState>())
        {
            foreach (var linkEvent in Enum.GetValues<LinkEvent>())
            {
                Assert.True(Enum.IsDefined(LinkStateTable.Next(state, linkEvent)), $"{state} × {linkEvent}");
            }
        }
    }

    [Fact]
    public void Refused_credentials_fail_the_link_from_any_state()
    {
        foreach (var state in Enum.GetValues<LinkState>())
        {
            Assert.Equal(LinkState.Failed, LinkStateTable.Next(state, LinkEvent.Refused));
        }
    }

    [Fact]
    public void A_confirmation_changes_nothing_but_a_stall()
    {
        foreach (var state in Enum.GetValues<LinkState>())
        {
            Assert.Equal(state == LinkState.Stalled ? LinkState.Connected : state, LinkStateTable.Next(state, LinkEvent.Confirmed));
        }
    }

    [Fact]
    public void The_reconnect_back_off_doubles_up_to_the_cap_with_jitter()
    {
        var cap = TimeSpan.FromSeconds(5);
        Assert.Equal(TimeSpan.FromMilliseconds(50), ReconnectBackoff.Delay(1, cap, 0));
        Assert.Equal(TimeSpan.FromMilliseconds(200), ReconnectBackoff.Delay(2, cap, 1));
        Assert.Equal(TimeSpan.FromSeconds(2.5), ReconnectBackoff.Delay(30, cap, 0));
        Assert.InRange(ReconnectBackoff.Delay(30, cap, 0.999), TimeSpan.FromSeconds(4.99), cap);
    }
}
