/*
 * qio_out.c - the output files of the qmv tool (qio.h; the guarantees are listed in
 * docs/CLI-GUARANTEES.md): a regular file is written under a temporary name beside it and
 * moved into place at the end, without replacing anything unless forced; character devices
 * and FIFOs are written through, never replaced; temporary files are removed when the run is
 * interrupted by a catchable signal, and those of killed runs by the next run for the same
 * output.
 */
#define _GNU_SOURCE /* renameat2 and RENAME_NOREPLACE on Linux; POSIX calls otherwise */

#include "qio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- temporary files, removed on signals -------------------------------------------------- */

/* The signal handler reads these, so they are static storage, written before the file exists
 * (mkstemp fills the name in place) and cleared only after the file is gone or renamed. */
#define QIO_OUT_SLOTS 8
static char slot_path[QIO_OUT_SLOTS][PATH_MAX];
static volatile sig_atomic_t slot_used[QIO_OUT_SLOTS];

static const int caught_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGXFSZ};
#define NCAUGHT ((int)(sizeof caught_signals / sizeof caught_signals[0]))

/* Removes the temporary files, then lets the signal take its default action (SA_RESETHAND
 * restored it; the raised signal is delivered when the handler returns). Only
 * async-signal-safe calls. */
static void on_fatal_signal(int sig)
{
    for (int i = 0; i < QIO_OUT_SLOTS; i++)
        if (slot_used[i])
            unlink(slot_path[i]);
    raise(sig);
}

/* Installs the handler for each caught signal whose action is the default one (a signal the
 * caller ignores, as nohup does with SIGHUP, or handles itself is left alone). */
static void install_handlers(void)
{
    for (int i = 0; i < NCAUGHT; i++) {
        struct sigaction old, sa;
        if (sigaction(caught_signals[i], NULL, &old) != 0 || old.sa_handler != SIG_DFL)
            continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal_signal;
        sigfillset(&sa.sa_mask);
        sa.sa_flags = SA_RESETHAND;
        sigaction(caught_signals[i], &sa, NULL);
    }
}

static int slot_take(void)
{
    for (int i = 0; i < QIO_OUT_SLOTS; i++)
        if (!slot_used[i])
            return i;
    return -1;
}

/* ---- stale temporary files ---------------------------------------------------------------- */

/* Splits path into its directory ("." when none) and its last component. */
static int split_path(const char *path, char *dir, size_t dir_size, const char **base)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, dir_size, ".");
        *base = path;
        return 0;
    }
    const size_t n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= dir_size)
        return -1;
    memcpy(dir, path, n);
    dir[n] = '\0';
    *base = slash + 1;
    return 0;
}

/* The pid of a temporary file name "<base>.qmv-tmp-<pid>-XXXXXX" of qmv's own pattern for
 * `base`; 0 when the name is not one. */
static long tmp_name_pid(const char *name, const char *base)
{
    const size_t bl = strlen(base), tl = strlen(QIO_TMP_TAG);
    if (strncmp(name, base, bl) != 0 || strncmp(name + bl, QIO_TMP_TAG, tl) != 0)
        return 0;
    const char *p = name + bl + tl;
    long pid = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 10; p++, digits++)
        pid = pid * 10 + (*p - '0');
    if (!digits || pid <= 0 || pid > INT_MAX || *p != '-' || strlen(p + 1) != 6)
        return 0;
    for (const char *q = p + 1; *q; q++)
        if (!((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')))
            return 0;
    return pid;
}

/* Removes the regular files of qmv's temporary pattern for path whose creating process no
 * longer exists (kill(pid, 0) fails with ESRCH): a live run's file, ours included, and any
 * file whose process cannot be told gone are left alone. */
static void remove_stale(const char *path)
{
    char dir[PATH_MAX];
    const char *base;
    if (split_path(path, dir, sizeof dir, &base) != 0 || !*base)
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const long pid = tmp_name_pid(de->d_name, base);
        if (!pid || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

/* ---- open --------------------------------------------------------------------------------- */

static void out_clear(qio_out *out)
{
    memset(out, 0, sizeof *out);
    out->slot_ = -1;
}

/* A character device or FIFO at path (or behind a link there): written directly. */
static int open_special(const char *path, qio_out *out, qio_error *e)
{
    int fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return qio_fail(e, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !(S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))) {
        close(fd);
        return qio_fail(e, "was replaced while being opened; nothing written");
    }
    out->f = fdopen(fd, "wb");
    if (!out->f) {
        int err = errno;
        close(fd);
        return qio_fail(e, "cannot open: %s", strerror(err));
    }
    out->special_ = 1;
    return 0;
}

int qio_out_open(const char *path, int force, qio_out *out, qio_error *e)
{
    out_clear(out);
    if (strcmp(path, "-") == 0) {
        out->f = stdout;
        return 0;
    }
    struct stat lst, st;
    if (lstat(path, &lst) == 0) {
        const int resolved = stat(path, &st) == 0;
        if (resolved && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)))
            return open_special(path, out, e);
        if (S_ISLNK(lst.st_mode)) {
            if (!force)
                return qio_fail(e, "is a symbolic link %s (use --force to replace the link)",
                                resolved ? "to an existing file" : "to nothing");
        } else if (S_ISDIR(lst.st_mode)) {
            return qio_fail(e, "is a directory");
        } else if (!S_ISREG(lst.st_mode)) {
            return qio_fail(e, "is a block device or socket; qmv writes only regular files, "
                               "character devices and FIFOs");
        } else if (!force) {
            return qio_fail(e, "already exists (use --force to replace it)");
        }
    } else if (errno != ENOENT) {
        return qio_fail(e, "cannot inspect it: %s", strerror(errno));
    }
    remove_stale(path);
    install_handlers();
    const int slot = slot_take();
    if (slot < 0)
        return qio_fail(e, "too many output files open at once");
    /* Same directory as the target, so the final rename or link stays on one file system. */
    char *tmp = slot_path[slot];
    if (snprintf(tmp, PATH_MAX, "%s%s%ld-XXXXXX", path, QIO_TMP_TAG, (long)getpid()) >= PATH_MAX)
        return qio_fail(e, "the name is too long for a temporary file beside it");
    out->path = strdup(path);
    if (!out->path)
        return qio_fail(e, "out of memory");
    slot_used[slot] = 1; /* before the file exists: a signal from here on removes it */
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int err = errno;
        slot_used[slot] = 0;
        free(out->path);
        out_clear(out);
        return qio_fail(e, "cannot create a temporary file beside it: %s", strerror(err));
    }
    out->tmp = tmp;
    out->slot_ = slot;
    out->force_ = force;
    /* mkstemp makes the file 0600; give it the mode a plain fopen would (0666 & ~umask). */
    mode_t um = umask(0);
    umask(um);
    fchmod(fd, 0666 & ~um);
    out->f = fdopen(fd, "wb");
    if (!out->f) {
        int err = errno;
        close(fd);
        qio_out_abort(out);
        return qio_fail(e, "cannot open: %s", strerror(err));
    }
    return 0;
}

/* ---- commit ------------------------------------------------------------------------------- */

/* --force over a regular file: the new file takes its owner (where permitted: chown needs
 * privileges, a group the user belongs to is kept without) and its permission bits. */
static void keep_owner_and_mode(int fd, const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    if (fchown(fd, st.st_uid, st.st_gid) != 0)
        (void)!fchown(fd, (uid_t)-1, st.st_gid);
    fchmod(fd, st.st_mode & 07777);
}

/* Moves tmp to path only if nothing is at path: renameat2(RENAME_NOREPLACE) where the kernel
 * and file system have it, else link() + unlink(), both atomic against a file created at
 * path meanwhile (by another program or another qmv run). */
static int place_new(const char *tmp, const char *path, qio_error *e)
{
    static const char appeared[] = "already exists (it was created while qmv ran; use --force "
                                   "to replace it)";
#if defined(RENAME_NOREPLACE)
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno == EEXIST)
        return qio_fail(e, appeared);
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
        return qio_fail(e, "cannot move the temporary file into place: %s", strerror(errno));
#endif
    if (link(tmp, path) == 0)
        return unlink(tmp), 0;
    if (errno == EEXIST)
        return qio_fail(e, appeared);
    return qio_fail(e, "cannot move the temporary file into place without replacing: %s",
                    strerror(errno));
}

/* --force: renames tmp over path, unless path became a special file or a directory while
 * qmv ran (those are never replaced). */
static int replace(const char *tmp, const char *path, qio_error *e)
{
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
        return qio_fail(e, "became a directory or special file while qmv ran; not replaced");
    if (rename(tmp, path) != 0)
        return qio_fail(e, "cannot rename the temporary file into place: %s", strerror(errno));
    return 0;
}

int qio_out_commit(qio_out *o, qio_error *e)
{
    if (!o->tmp) { /* stdout, a character device or a FIFO */
        int bad = fflush(o->f) != 0 || ferror(o->f);
        int err = errno;
        if (o->special_ && fclose(o->f) != 0 && !bad) {
            bad = 1;
            err = errno;
        }
        out_clear(o);
        return bad ? qio_fail(e, "write error: %s", strerror(err)) : 0;
    }
    int rc = 0;
    if (fflush(o->f) != 0 || ferror(o->f))
        rc = qio_fail(e, "write error: %s", strerror(errno));
    else if (fsync(fileno(o->f)) != 0 && errno != EINVAL)
        rc = qio_fail(e, "write error (fsync): %s", strerror(errno));
    if (rc == 0 && o->force_)
        keep_owner_and_mode(fileno(o->f), o->path);
    if (fclose(o->f) != 0 && rc == 0)
        rc = qio_fail(e, "write error (close): %s", strerror(errno));
    o->f = NULL;
    if (rc == 0 && o->force_)
        rc = replace(o->tmp, o->path, e);
    else if (rc == 0)
        rc = place_new(o->tmp, o->path, e);
    if (rc == 0) { /* the temporary name is gone: nothing for a signal or abort to remove */
        slot_used[o->slot_] = 0;
        o->tmp = NULL;
    }
    qio_out_abort(o);
    return rc;
}

void qio_out_abort(qio_out *o)
{
    if (!o)
        return;
    if (o->f && o->f != stdout)
        fclose(o->f);
    if (o->tmp) {
        unlink(o->tmp);
        if (o->slot_ >= 0)
            slot_used[o->slot_] = 0;
    }
    free(o->path);
    out_clear(o);
}
