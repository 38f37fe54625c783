-- Students are booked on the electives window.
INSERT INTO rotations (capacity_window_id, student, start_date, end_date, status) VALUES ((SELECT id FROM capacity_windows WHERE key = 'electives'), 'Student One', '2027-02-01', '2027-02-28', 'scheduled');
INSERT INTO rotations (capacity_window_id, student, start_date, end_date, status) VALUES ((SELECT id FROM capacity_windows WHERE key = 'electives'), 'Student Two', '2027-03-01', '2027-03-28', 'completed');
INSERT INTO rotations (capacity_window_id, student, start_date, end_date, status) VALUES ((SELECT id FROM capacity_windows WHERE key = 'electives'), 'Student Three', '2027-04-01', '2027-04-28', 'scheduled')
