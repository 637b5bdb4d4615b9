#!/usr/bin/perl
# The client matrix's steps (../README.md) with Perl's DBI and DBD::MariaDB.
# Prints one JSON line per step.
use strict;
use warnings;
use utf8;

use DBI;
use JSON::PP;

my $EMOJI = "😀 ok 🎉 ünï";
my $PARAM_TEXT = "it's \"q\" \\ ünï 😀";
my $ITEMS_FROM = 'SELECT id, name, price FROM items WHERE id >= ? ORDER BY id LIMIT 3';
my $SENTENCE = 'I love this, thank you!';
my $json = JSON::PP->new->ascii->canonical;

my $conn;

sub connect_db {
    my ($tls) = @_;
    my $dsn = "DBI:MariaDB:database=$ENV{MX_DATABASE};host=$ENV{MX_HOST};port=$ENV{MX_PORT}";
    $dsn .= ";mariadb_ssl=1;mariadb_ssl_verify_server_cert=1;mariadb_ssl_ca_file=$ENV{MX_TLS_CA}"
        if $tls;
    return DBI->connect($dsn, $ENV{MX_USER}, $ENV{MX_PASSWORD},
        { RaiseError => 1, PrintError => 0, AutoCommit => 1 });
}

sub main_conn {
    $conn //= connect_db(0);
    return $conn;
}

sub text {
    my ($value) = @_;
    return defined $value ? "$value" : undef;
}

sub rows_as_text {
    my ($rows) = @_;
    return [ map { [ map { text($_) } @$_ ] } @$rows ];
}

sub query {
    my ($sql, @params) = @_;
    return main_conn()->selectall_arrayref($sql, undef, @params);
}

sub items {
    my ($server) = @_;
    my $sth = main_conn()->prepare($ITEMS_FROM, { mariadb_server_prepare => $server });
    my @results;
    for my $start (2, 8) {
        $sth->execute($start);
        push @results, rows_as_text($sth->fetchall_arrayref);
    }
    return \@results;
}

# Each step returns its detail, or [verdict => detail, ok] when it judges itself.
my @steps = (
    connect => sub {
        $conn = connect_db(0);
        return text(query('SELECT CURRENT_USER()')->[0][0]);
    },
    connect_tls => sub {
        my $secure = connect_db(1);
        my $user = $secure->selectall_arrayref('SELECT CURRENT_USER()')->[0][0];
        $secure->disconnect;
        return text($user);
    },
    params => sub {
        return rows_as_text(query('SELECT ? AS i, ? AS s, ? AS n', 42, $PARAM_TEXT, undef));
    },
    # DBD::MariaDB substitutes parameters itself unless mariadb_server_prepare is set.
    server_prepared => sub { return items(1) },
    client_prepared => sub { return items(0) },
    transaction => sub {
        my $dbh = main_conn();
        $dbh->do('DELETE FROM scratch');
        $dbh->begin_work;
        $dbh->do('INSERT INTO scratch (id, txt) VALUES (?, ?)', undef, 1, 'in a transaction');
        my $inside = query('SELECT COUNT(*) FROM scratch')->[0][0];
        $dbh->rollback;
        my $after = query('SELECT COUNT(*) FROM scratch')->[0][0];
        return [ text($inside), text($after) ];
    },
    call => sub {
        my $sth = main_conn()->prepare('CALL items_upto(3)');
        $sth->execute;
        my @rows;
        do {
            push @rows, @{ rows_as_text($sth->fetchall_arrayref) } if $sth->{NUM_OF_FIELDS};
        } while ($sth->more_results);
        return { rows => \@rows, after => text(query('SELECT 1')->[0][0]) };
    },
    big_result => sub {
        my $rows = query("SELECT seq, CONCAT('row-', seq) FROM seq_1_to_100000");
        my ($sum, $chars) = (0, 0);
        for my $row (@$rows) {
            $sum += $row->[0];
            $chars += length $row->[1];
        }
        return { rows => scalar(@$rows), sum => $sum, chars => $chars };
    },
    emoji => sub {
        my $dbh = main_conn();
        $dbh->do('DELETE FROM scratch');
        $dbh->do('INSERT INTO scratch (id, txt) VALUES (?, ?)', undef, 2, $EMOJI);
        my $row = [ map { text($_) }
            @{ query('SELECT txt, CHAR_LENGTH(txt), HEX(txt) FROM scratch')->[0] } ];
        return [ verdict => $row, $row->[0] eq $EMOJI ];
    },
    ml_constant => sub {
        return rows_as_text(query("SELECT aws_comprehend_detect_sentiment('$SENTENCE', 'en'),"
            . " aws_comprehend_detect_sentiment_confidence('$SENTENCE', 'en')"));
    },
    ml_column => sub {
        my $rows = query(
            "SELECT id, aws_comprehend_detect_sentiment(txt, 'en') FROM ml_texts ORDER BY id");
        return { rows => scalar(@$rows), labels => [ map { text($_->[1]) } @$rows ] };
    },
    error_1146 => sub {
        my $dbh = main_conn();
        my $ok = eval { query('SELECT * FROM no_such_table'); 1 };
        return [ verdict => { error => undef }, 0 ] if $ok;
        my ($code, $state) = ($dbh->err, $dbh->state);
        my $after = text(query('SELECT 1')->[0][0]);
        return [ verdict => { code => $code + 0, sqlstate => $state, after => $after },
            $code == 1146 ];
    },
    close => sub {
        my $dbh = main_conn();
        undef $conn;
        $dbh->disconnect;
        return undef;
    },
);

sub report {
    my ($step, $ok, $detail) = @_;
    print $json->encode({ step => $step, ok => $ok ? JSON::PP::true : JSON::PP::false,
        detail => $detail }), "\n";
}

sub reset_conn {
    return unless $conn;
    eval {
        $conn->rollback unless $conn->{AutoCommit};
        $conn->do('SELECT 1');
        1;
    } or undef $conn;
}

$| = 1;
while (my ($name, $step) = splice @steps, 0, 2) {
    my $result = eval { $step->() };
    if (my $error = $@) {
        my %detail = (error => "$error");
        if ($conn && $conn->err) {
            $detail{code} = $conn->err + 0;
            $detail{sqlstate} = $conn->state;
        }
        report($name, 0, \%detail);
        reset_conn();
        next;
    }
    if (ref $result eq 'ARRAY' && @$result == 3 && defined $result->[0]
        && $result->[0] eq 'verdict') {
        report($name, $result->[2], $result->[1]);
    } else {
        report($name, 1, $result);
    }
}
