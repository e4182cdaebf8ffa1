set terminal pngcairo size 1100,560 font "DejaVu Sans,10" noenhanced
set bmargin 6
set encoding utf8
set grid ytics lc rgb "#dddddd"
set border 3
set tics nomirror
set key outside right top
set style fill solid 0.85 border -1
set boxwidth 0.9
set output "coalescing.png"
set title "Coalescing: follower release lag, 50 identical requests, origin 100 / 300 ms (S5/S6)"
set style data histograms
set style histogram clustered gap 1
set key autotitle columnhead
set ylabel "follower − leader completion, ms (log)"
set yrange [0.01:*]
set logscale y
set xtics rotate by -20 left
plot "coalescing.dat" using 2:xtic(1), '' using 3, '' using 4
