using System.Device.Gpio;
using Gateway.Routing;

namespace Gateway.Gpio;

public sealed partial class GpioService
{
    /// <summary>One blink tick; a slow blink changes every 4 ticks (1 Hz), a fast one every tick (4 Hz).</summary>
    public static readonly TimeSpan LedTick = TimeSpan.FromMilliseconds(125);

    private enum LedPattern
    {
        Off,
        On,
        SlowBlink,
        FastBlink,
    }

    // Connected: on. Buffering or draining: slow blink. Stalled or failed: fast blink. Unknown: off.
    private LedPattern PatternFor(StatusLedOptions led)
    {
        if (led.Source == "gateway")
        {
            return LedPattern.On;
        }

        return status.GetLinkState(led.Source["uplink:".Length..]) switch
        {
            LinkState.Connected => LedPattern.On,
            LinkState.Buffering or LinkState.Draining => LedPattern.SlowBlink,
            LinkState.Stalled or LinkState.Failed => LedPattern.FastBlink,
            _ => LedPattern.Off,
        };
    }

    // Every LED is written on every tick, so a pattern change shows within one tick.
    private async Task DriveLedsAsync(GpioController controller, List<StatusLedOptions> leds, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(LedTick, time);
        long tick = 0;
        try
        {
            do
            {
                foreach (var led in leds)
                {
                    var on = PatternFor(led) switch
                    {
                        LedPattern.On => true,
                        LedPattern.SlowBlink => tick / 4 % 2 == 0,
                        LedPattern.FastBlink => tick % 2 == 0,
                        _ => false,
                    };
                    controller.Write(led.Pin, on ? PinValue.High : PinValue.Low);
                }

                tick++;
            }
            while (await timer.WaitForNextTickAsync(cancellationToken));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }
}
