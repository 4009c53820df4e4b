using System.Text.Json;
using Gateway.Gpio;
using Gateway.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using MQTTnet;

namespace Gateway.Host.IntegrationTests;

/// <summary>GPIO pins as MQTT endpoints, through the simulated driver and a fake clock.</summary>
[Trait("Category", "Integration")]
public sealed class GpioTests : IAsyncLifetime
{
    private const int Door = 17;
    private const int Relay = 5;
    private const int Led = 20;

    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-03-01T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private TestGateway _gateway = null!;
    private SimulatedGpioDriver _driver = null!;
    private MqttTestClient _client = null!;

    public async Task InitializeAsync()
    {
        _gateway = await TestGateway.StartAsync(
            builder => builder.Services.AddSingleton<TimeProvider>(_time),
            "--Gpio:Driver=simulated",
            "--Gpio:Pins:0:Name=door", $"--Gpio:Pins:0:Pin={Door}", "--Gpio:Pins:0:Mode=input", "--Gpio:Pins:0:DebounceMs=50",
            "--Gpio:Pins:1:Name=relay", $"--Gpio:Pins:1:Pin={Relay}", "--Gpio:Pins:1:Mode=output",
            "--Gpio:Pins:2:Name=clash", $"--Gpio:Pins:2:Pin={Door}", "--Gpio:Pins:2:Mode=output",
            "--Gpio:Pins:3:Name=nowhere", "--Gpio:Pins:3:Pin=999", "--Gpio:Pins:3:Mode=input",
            $"--Gpio:Leds:0:Pin={Led}", "--Gpio:Leds:0:Source=uplink:cloud");
        _gateway.ExpectErrors(e => e.EventId.Id == 3002); // 'clash' and 'nowhere', checked below
        var gpio = _gateway.Services.GetRequiredService<GpioService>();
        await gpio.Ready.WithTimeout("the GPIO pins");
        _driver = (SimulatedGpioDriver)gpio.Driver!;
        _client = await MqttTestClient.ConnectAsync(_gateway.MqttPort);
        await _client.SubscribeAsync("gpio/#");
    }

    public async Task DisposeAsync()
    {
        await _client.DisposeAsync();
        await _gateway.DisposeAsync();
    }

    [Fact]
    public async Task Input_edge_with_bounce_publishes_exactly_one_message()
    {
        _driver.SetInput(Door, true);
        _driver.SetInput(Door, false); // bounce, inside the 50 ms window
        _driver.SetInput(Door, true);

        var first = await _client.ReceiveAsync();
        Assert.Equal("gpio/door", first.Topic);
        var json = JsonDocument.Parse(first.ConvertPayloadToString()).RootElement;
        Assert.Equal(1, json.GetProperty("level").GetInt32());
        Assert.Equal("rising", json.GetProperty("edge").GetString());
        Assert.Equal("2026-03-01T12:00:00.000Z", json.GetProperty("timestamp").GetString());
        Assert.Equal("application/json", first.ContentType);

        _time.Advance(TimeSpan.FromMilliseconds(100));
        _driver.SetInput(Door, false);

        var second = await _client.ReceiveAsync();
        Assert.Equal("falling", JsonDocument.Parse(second.ConvertPayloadToString()).RootElement.GetProperty("edge").GetString());
        await _client.AssertNothingMoreAsync();
    }

    [Fact]
    public async Task Set_messages_drive_the_output_and_it_publishes_its_state()
    {
        await _client.PublishAsync("gpio/relay/set", "on");
        await _driver.WaitForLevelAsync(Relay, true).WithTimeout("the relay to switch on");
        Assert.Equal(1, Level(await NextStateAsync("gpio/relay")));

        await _client.PublishAsync("gpio/relay/set", "toggle");
        Assert.Equal(0, Level(await NextStateAsync("gpio/relay")));
        Assert.False(_driver.GetOutput(Relay));

        await _client.PublishAsync("gpio/relay/set", "1");
        Assert.Equal(1, Level(await NextStateAsync("gpio/relay")));
        await _client.PublishAsync("gpio/relay/set", "OFF");
        Assert.Equal(0, Level(await NextStateAsync("gpio/relay")));
    }

    [Fact]
    public async Task A_bad_payload_is_rejected_with_a_log_line_and_the_gateway_keeps_serving()
    {
        await _client.PublishAsync("gpio/relay/set", "maybe");
        await _client.PublishAsync("gpio/relay/set", "on");

        Assert.Equal(1, Level(await NextStateAsync("gpio/relay"))); // "maybe" produced no state message
        Assert.True(_driver.GetOutput(Relay));
        Assert.Contains(_gateway.Logs.Entries, e => e.EventId.Id == 3003 && e.Message.Contains("'maybe'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_pin_event_a_full_queue_refuses_is_logged_and_still_reaches_the_queues_that_take_it()
    {
        var router = _gateway.Services.GetRequiredService<MessageRouter>();
        router.DeclareQueue("door-audit", new QueueOptions
        {
            Arguments = new Dictionary<string, object?> { ["x-max-length"] = 1, ["x-overflow"] = "reject-publish" },
        });
        router.Bind(MessageRouter.AmqTopic, "door-audit", "gpio.door");

        for (var edge = 0; edge < 3; edge++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(100)); // past the debounce window
            _driver.SetInput(Door, edge % 2 == 0);
        }

        for (var edge = 0; edge < 3; edge++)
        {
            Assert.Equal("gpio/door", (await _client.ReceiveAsync()).Topic); // the subscriber has all three
        }

        // Events are published one after another: the second's warning was written before the
        // third was routed, and the subscriber has the third.
        var refused = _gateway.Logs.Entries.Where(e => e.EventId.Id == 3005).ToList();
        Assert.Contains(refused, e => e.Level == Microsoft.Extensions.Logging.LogLevel.Warning
            && e.Message.Contains("'door'", StringComparison.Ordinal)
            && e.Message.Contains("\"level\":0,\"edge\":\"falling\"", StringComparison.Ordinal)
            && e.Message.Contains("1 queue(s) refused", StringComparison.Ordinal)
            && e.Message.Contains("1 queue(s) took it", StringComparison.Ordinal));
        Assert.Equal(1, router.GetQueue("door-audit").ReadyCount);
    }

    [Fact]
    public async Task Pin_events_beyond_the_buffer_drop_the_oldest_and_say_so()
    {
        // A consumer that never acknowledges, on a queue with a flow limit of 1: it holds one
        // message, and the next pin event holds publishing, as a stuck consumer would.
        var router = _gateway.Services.GetRequiredService<MessageRouter>();
        var stuck = router.DeclareQueue("door-stuck", new QueueOptions { FlowLimit = 1 });
        router.Bind(MessageRouter.AmqTopic, "door-stuck", "gpio.door");
        using var consumer = stuck.AddConsumer(new ConsumerOptions { Prefetch = 1, Tag = "stuck" });

        _driver.SetInput(Door, true);
        Assert.Equal(1, Level(await NextStateAsync("gpio/door"))); // edge 0: the consumer holds it
        _time.Advance(TimeSpan.FromMilliseconds(100)); // past the debounce window
        _driver.SetInput(Door, false);
        Assert.Equal(0, Level(await NextStateAsync("gpio/door"))); // edge 1: published, and publishing waits on it
        const int Edges = 2 + 1024 + 5; // those two, a buffer full, five more
        for (var edge = 2; edge < Edges; edge++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(100));
            _driver.SetInput(Door, edge % 2 == 0);
        }

        var dropped = _gateway.Logs.Entries.Where(e => e.EventId.Id == 3004).Select(e => e.Message).ToList();
        Assert.Equal(
            ["GPIO input events arrive faster than they can be published; 1 dropped so far",
             "GPIO input events arrive faster than they can be published; 2 dropped so far",
             "GPIO input events arrive faster than they can be published; 4 dropped so far"],
            dropped);

        consumer.Dispose(); // no consumer, no flow limit: publishing goes on
        var levels = new List<int>();
        while (levels.Count < 1024)
        {
            levels.Add(Level(await NextStateAsync("gpio/door")));
        }

        // Edges 2 to 6 were dropped: the buffer held 7 to 1030, in order.
        Assert.Equal(Enumerable.Range(7, 1024).Select(edge => edge % 2 == 0 ? 1 : 0), levels);
        await _client.AssertNothingMoreAsync();
    }

    [Fact]
    public void A_pin_in_use_or_missing_is_reported_for_that_pin_and_the_rest_work()
    {
        var pinErrors = _gateway.Logs.Entries.Where(e => e.EventId.Id == 3002).Select(e => e.Message).ToList();

        Assert.Contains(pinErrors, m => m.Contains("'clash' (line 17)", StringComparison.Ordinal) && m.Contains("busy", StringComparison.Ordinal));
        Assert.Contains(pinErrors, m => m.Contains("'nowhere'", StringComparison.Ordinal));
        Assert.Equal(2, pinErrors.Count);
    }

    [Fact]
    public async Task Status_led_follows_the_uplink_state()
    {
        var status = _gateway.Services.GetRequiredService<GatewayStatus>();

        status.SetLinkState("cloud", LinkState.Connected);
        _time.Advance(GpioService.LedTick);
        await _driver.WaitForLevelAsync(Led, true).WithTimeout("the LED to light");

        status.SetLinkState("cloud", LinkState.Failed);
        Assert.Equal(7, Transitions(await TicksAsync(8))); // fast blink: every tick

        status.SetLinkState("cloud", LinkState.Buffering);
        await TicksAsync(1);
        Assert.InRange(Transitions(await TicksAsync(8)), 1, 2); // slow blink: every fourth tick

        status.SetLinkState("cloud", LinkState.Unknown);
        Assert.Equal(0, Transitions(await TicksAsync(4)));
        Assert.False(_driver.GetOutput(Led));
    }

    private async Task<List<bool>> TicksAsync(int count)
    {
        var levels = new List<bool>();
        for (var i = 0; i < count; i++)
        {
            var written = _driver.Writes.Count(w => w.Pin == Led);
            _time.Advance(GpioService.LedTick);
            await _driver.WaitForWritesAsync(Led, written + 1).WithTimeout("an LED tick");
            levels.Add(_driver.GetOutput(Led));
        }

        return levels;
    }

    private static int Transitions(List<bool> levels) => levels.Zip(levels.Skip(1)).Count(p => p.First != p.Second);

    private async Task<MqttApplicationMessage> NextStateAsync(string topic)
    {
        while (true)
        {
            var message = await _client.ReceiveAsync();
            if (message.Topic == topic)
            {
                return message;
            }
        }
    }

    private static int Level(MqttApplicationMessage message) =>
        JsonDocument.Parse(message.ConvertPayloadToString()).RootElement.GetProperty("level").GetInt32();
}

[Trait("Category", "Integration")]
public sealed class GpioMissingChipTests
{
    [Fact]
    public async Task A_missing_gpio_chip_is_reported_and_the_gateway_runs_without_pins()
    {
        await using var gateway = await TestGateway.StartAsync(
            "--Gpio:Driver=libgpiod", "--Gpio:Chip=7",
            "--Gpio:Pins:0:Name=door", "--Gpio:Pins:0:Pin=17");
        gateway.ExpectErrors(e => e.EventId.Id == 3001);
        var gpio = gateway.Services.GetRequiredService<GpioService>();

        await using var client = await MqttTestClient.ConnectAsync(gateway.MqttPort);
        await client.SubscribeAsync("still/working");
        await client.PublishAsync("still/working", "yes");
        Assert.Equal("yes", (await client.ReceiveAsync()).ConvertPayloadToString());

        await gpio.Ready.WithTimeout("GPIO start-up");
        Assert.Contains(gateway.Logs.Entries, e => e.EventId.Id == 3001 && e.Message.Contains("chip 7", StringComparison.Ordinal));
        Assert.Null(gpio.Driver);
    }
}
