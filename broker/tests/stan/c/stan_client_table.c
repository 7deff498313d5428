/*
 * The NATS Streaming client table for the C client: libnats (Debian's libnats-dev, built with
 * its streaming API) against a broker started with -cid test-cluster. Usage:
 *
 *     stan_client_table nats://127.0.0.1:<port>
 *
 * Each test connects clients of its own, on channels of its own, and prints one TAP line; the
 * exit status is the number of failed tests. broker/tests/stan_clients.rs compiles and runs it.
 */

/* The streaming API is compiled into the library; its declarations need this. */
#define NATS_HAS_STREAMING 1
#define _DEFAULT_SOURCE 1
#include <nats/nats.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLUSTER "test-cluster"
#define WAIT_MS 10000
#define MAX_SEEN 64

static const char *url;
static int failed;
static int number;

/* What a subscription callback saw. */
typedef struct {
    atomic_int count;
    atomic_int redelivered;
    bool ack;
    uint64_t seqs[MAX_SEEN];
} seen_t;

static void on_msg(stanConnection *sc, stanSubscription *sub, const char *channel, stanMsg *msg,
                   void *closure)
{
    (void) sc;
    (void) channel;
    seen_t *seen = closure;
    int i = atomic_fetch_add(&seen->count, 1);
    if (i < MAX_SEEN)
        seen->seqs[i] = stanMsg_GetSequence(msg);
    if (stanMsg_IsRedelivered(msg))
        atomic_fetch_add(&seen->redelivered, 1);
    if (seen->ack)
        stanSubscription_AckMsg(sub, msg);
    stanMsg_Destroy(msg);
}

/* Waits until `seen` has at least `n` messages; false after WAIT_MS. */
static bool wait_for(seen_t *seen, int n)
{
    for (int waited = 0; waited < WAIT_MS; waited += 10) {
        if (atomic_load(&seen->count) >= n)
            return true;
        usleep(10 * 1000);
    }
    return false;
}

static void report(bool ok, const char *name, const char *why)
{
    number++;
    if (ok) {
        printf("ok %d - %s\n", number, name);
    } else {
        failed++;
        printf("not ok %d - %s # %s (last error: %s)\n", number, name, why,
               nats_GetLastError(NULL));
    }
    fflush(stdout);
}

#define CHECK(cond, why)                                                                        \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            report(false, name, why);                                                           \
            goto done;                                                                          \
        }                                                                                       \
    } while (0)

static natsStatus connect_client(stanConnection **sc, const char *id)
{
    stanConnOptions *opts = NULL;
    natsStatus s = stanConnOptions_Create(&opts);
    if (s == NATS_OK)
        s = stanConnOptions_SetURL(opts, url);
    if (s == NATS_OK)
        s = stanConnection_Connect(sc, CLUSTER, id, opts);
    stanConnOptions_Destroy(opts);
    return s;
}

static void close_client(stanConnection *sc)
{
    if (sc != NULL) {
        stanConnection_Close(sc);
        stanConnection_Destroy(sc);
    }
}

static natsStatus publish_n(stanConnection *sc, const char *channel, int n)
{
    natsStatus s = NATS_OK;
    char text[32];
    for (int i = 1; s == NATS_OK && i <= n; i++) {
        snprintf(text, sizeof text, "m%d", i);
        s = stanConnection_Publish(sc, channel, text, (int) strlen(text));
    }
    return s;
}

static void connect_publish_and_subscribe_from_the_first(void)
{
    const char *name = "a C client publishes with PubAcks and reads everything from the first";
    stanConnection *sc = NULL;
    stanSubscription *sub = NULL;
    stanSubOptions *so = NULL;
    seen_t seen = {.ack = true};
    CHECK(connect_client(&sc, "c-basic") == NATS_OK, "connect");
    CHECK(publish_n(sc, "c.basic", 5) == NATS_OK, "publish");
    stanSubOptions_Create(&so);
    stanSubOptions_DeliverAllAvailable(so);
    CHECK(stanConnection_Subscribe(&sub, sc, "c.basic", on_msg, &seen, so) == NATS_OK,
          "subscribe");
    CHECK(wait_for(&seen, 5), "5 messages");
    for (int i = 0; i < 5; i++)
        CHECK(seen.seqs[i] == (uint64_t) i + 1, "sequences 1 to 5 in order");
    report(true, name, NULL);
done:
    stanSubscription_Destroy(sub);
    stanSubOptions_Destroy(so);
    close_client(sc);
}

static void a_duplicate_client_id_is_refused(void)
{
    const char *name = "a second connect with a live client's ID is refused";
    stanConnection *first = NULL, *second = NULL;
    CHECK(connect_client(&first, "c-dup") == NATS_OK, "first connect");
    CHECK(connect_client(&second, "c-dup") != NATS_OK, "the second connect succeeded");
    CHECK(strstr(nats_GetLastError(NULL), "clientID already registered") != NULL,
          "the error names the duplicate");
    report(true, name, NULL);
done:
    close_client(second);
    close_client(first);
}

static void an_unacked_message_is_redelivered(void)
{
    const char *name = "an unacknowledged message comes again after the ack wait, redelivered";
    stanConnection *sc = NULL;
    stanSubscription *sub = NULL;
    stanSubOptions *so = NULL;
    seen_t seen = {.ack = false};
    CHECK(connect_client(&sc, "c-redeliver") == NATS_OK, "connect");
    stanSubOptions_Create(&so);
    stanSubOptions_SetManualAckMode(so, true);
    stanSubOptions_SetAckWait(so, 1000);
    CHECK(stanConnection_Subscribe(&sub, sc, "c.redeliver", on_msg, &seen, so) == NATS_OK,
          "subscribe");
    CHECK(publish_n(sc, "c.redeliver", 1) == NATS_OK, "publish");
    CHECK(wait_for(&seen, 2), "a redelivery");
    CHECK(seen.seqs[0] == 1 && seen.seqs[1] == 1, "the same message twice");
    CHECK(atomic_load(&seen.redelivered) >= 1, "marked redelivered");
    report(true, name, NULL);
done:
    stanSubscription_Destroy(sub);
    stanSubOptions_Destroy(so);
    close_client(sc);
}

static void a_durable_resumes_after_close(void)
{
    const char *name = "a durable subscription resumes where it was after its subscription closed";
    stanConnection *sc = NULL;
    stanSubscription *sub = NULL;
    stanSubOptions *so = NULL;
    seen_t first = {.ack = true}, again = {.ack = true};
    CHECK(connect_client(&sc, "c-durable") == NATS_OK, "connect");
    stanSubOptions_Create(&so);
    stanSubOptions_DeliverAllAvailable(so);
    stanSubOptions_SetDurableName(so, "c-dur");
    CHECK(publish_n(sc, "c.durable", 3) == NATS_OK, "publish");
    CHECK(stanConnection_Subscribe(&sub, sc, "c.durable", on_msg, &first, so) == NATS_OK,
          "subscribe");
    CHECK(wait_for(&first, 3), "3 messages");
    usleep(200 * 1000); /* the acks go out */
    CHECK(stanSubscription_Close(sub) == NATS_OK, "close the subscription");
    stanSubscription_Destroy(sub);
    sub = NULL;
    CHECK(publish_n(sc, "c.durable", 2) == NATS_OK, "publish more");
    CHECK(stanConnection_Subscribe(&sub, sc, "c.durable", on_msg, &again, so) == NATS_OK,
          "subscribe again");
    CHECK(wait_for(&again, 2), "2 messages");
    CHECK(again.seqs[0] == 4 && again.seqs[1] == 5, "from sequence 4");
    usleep(200 * 1000);
    CHECK(atomic_load(&again.count) == 2, "nothing before");
    report(true, name, NULL);
done:
    stanSubscription_Destroy(sub);
    stanSubOptions_Destroy(so);
    close_client(sc);
}

static void a_queue_group_shares_the_messages(void)
{
    const char *name = "two queue members share the messages, each once";
    stanConnection *a = NULL, *b = NULL;
    stanSubscription *sa = NULL, *sb = NULL;
    seen_t seen_a = {.ack = true}, seen_b = {.ack = true};
    CHECK(connect_client(&a, "c-queue-a") == NATS_OK, "connect a");
    CHECK(connect_client(&b, "c-queue-b") == NATS_OK, "connect b");
    CHECK(stanConnection_QueueSubscribe(&sa, a, "c.queue", "workers", on_msg, &seen_a, NULL)
              == NATS_OK,
          "subscribe a");
    CHECK(stanConnection_QueueSubscribe(&sb, b, "c.queue", "workers", on_msg, &seen_b, NULL)
              == NATS_OK,
          "subscribe b");
    CHECK(publish_n(a, "c.queue", 20) == NATS_OK, "publish");
    for (int waited = 0; waited < WAIT_MS; waited += 10) {
        if (atomic_load(&seen_a.count) + atomic_load(&seen_b.count) >= 20)
            break;
        usleep(10 * 1000);
    }
    usleep(200 * 1000);
    CHECK(atomic_load(&seen_a.count) + atomic_load(&seen_b.count) == 20, "20 in all");
    CHECK(atomic_load(&seen_a.count) > 0 && atomic_load(&seen_b.count) > 0, "both got some");
    report(true, name, NULL);
done:
    stanSubscription_Destroy(sa);
    stanSubscription_Destroy(sb);
    close_client(a);
    close_client(b);
}

static void start_at_a_sequence_and_last_received(void)
{
    const char *name = "start at a sequence, and with the last received";
    stanConnection *sc = NULL;
    stanSubscription *s1 = NULL, *s2 = NULL;
    stanSubOptions *at = NULL, *last = NULL;
    seen_t from3 = {.ack = true}, latest = {.ack = true};
    CHECK(connect_client(&sc, "c-start") == NATS_OK, "connect");
    CHECK(publish_n(sc, "c.start", 5) == NATS_OK, "publish");
    stanSubOptions_Create(&at);
    stanSubOptions_StartAtSequence(at, 3);
    stanSubOptions_Create(&last);
    stanSubOptions_StartWithLastReceived(last);
    CHECK(stanConnection_Subscribe(&s1, sc, "c.start", on_msg, &from3, at) == NATS_OK, "at 3");
    CHECK(stanConnection_Subscribe(&s2, sc, "c.start", on_msg, &latest, last) == NATS_OK,
          "last");
    CHECK(wait_for(&from3, 3) && wait_for(&latest, 1), "messages");
    CHECK(from3.seqs[0] == 3 && from3.seqs[2] == 5, "3 to 5");
    CHECK(latest.seqs[0] == 5, "the last one");
    report(true, name, NULL);
done:
    stanSubscription_Destroy(s1);
    stanSubscription_Destroy(s2);
    stanSubOptions_Destroy(at);
    stanSubOptions_Destroy(last);
    close_client(sc);
}

static atomic_int async_acks;
static atomic_int async_errors;

static void on_pub_ack(const char *guid, const char *error, void *closure)
{
    (void) guid;
    (void) closure;
    if (error != NULL)
        atomic_fetch_add(&async_errors, 1);
    atomic_fetch_add(&async_acks, 1);
}

static void async_publishes_are_each_acknowledged(void)
{
    const char *name = "asynchronous publishes each get their PubAck";
    stanConnection *sc = NULL;
    CHECK(connect_client(&sc, "c-async") == NATS_OK, "connect");
    for (int i = 0; i < 100; i++)
        CHECK(stanConnection_PublishAsync(sc, "c.async", "x", 1, on_pub_ack, NULL) == NATS_OK,
              "publish");
    for (int waited = 0; waited < WAIT_MS && atomic_load(&async_acks) < 100; waited += 10)
        usleep(10 * 1000);
    CHECK(atomic_load(&async_acks) == 100, "100 PubAcks");
    CHECK(atomic_load(&async_errors) == 0, "no errors");
    report(true, name, NULL);
done:
    close_client(sc);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s nats://host:port\n", argv[0]);
        return 2;
    }
    url = argv[1];
    connect_publish_and_subscribe_from_the_first();
    a_duplicate_client_id_is_refused();
    an_unacked_message_is_redelivered();
    a_durable_resumes_after_close();
    a_queue_group_shares_the_messages();
    start_at_a_sequence_and_last_received();
    async_publishes_are_each_acknowledged();
    printf("1..%d\n", number);
    nats_Close();
    return failed;
}
